package awsquery

import (
	"bytes"
	"encoding/xml"
	"reflect"
)

// List is a list member of a response: encoded as <Name><member>...
// </member>...</Name>, and as an empty <Name></Name> when it has no
// members (a plain slice with an xml:"Name>member" tag would vanish).
type List[T any] struct {
	Member []T `xml:"member"`
}

// ListOf wraps items; a nil slice still encodes as an empty list.
func ListOf[T any](items []T) List[T] { return List[T]{Member: items} }

// ContentType of Query protocol responses.
const ContentType = "text/xml"

// Response renders the success envelope of operation op:
//
//	<OpResponse xmlns="ns"><OpResult>result</OpResult>
//	<ResponseMetadata><RequestId>id</RequestId></ResponseMetadata></OpResponse>
//
// result is marshalled with encoding/xml as the OpResult element; a nil
// result (or a nil pointer) omits OpResult, as AWS does for operations
// without output.
func Response(op, xmlns, requestID string, result any) ([]byte, error) {
	var buf bytes.Buffer
	enc := xml.NewEncoder(&buf)
	root := xml.StartElement{Name: xml.Name{Local: op + "Response"}}
	if xmlns != "" {
		root.Attr = []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: xmlns}}
	}
	if err := enc.EncodeToken(root); err != nil {
		return nil, err
	}
	if !isNil(result) {
		if err := enc.EncodeElement(result, xml.StartElement{Name: xml.Name{Local: op + "Result"}}); err != nil {
			return nil, err
		}
	}
	meta := struct {
		RequestID string `xml:"RequestId"`
	}{requestID}
	if err := enc.EncodeElement(meta, xml.StartElement{Name: xml.Name{Local: "ResponseMetadata"}}); err != nil {
		return nil, err
	}
	if err := enc.EncodeToken(root.End()); err != nil {
		return nil, err
	}
	if err := enc.Flush(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

// errorResponse is the Query error envelope.
type errorResponse struct {
	XMLName   xml.Name `xml:"ErrorResponse"`
	Xmlns     string   `xml:"xmlns,attr,omitempty"`
	Error     errorBody
	RequestID string `xml:"RequestId"`
}

type errorBody struct {
	Type    string
	Code    string
	Message string
}

// ErrorResponse renders
//
//	<ErrorResponse xmlns="ns"><Error><Type>Sender</Type><Code>code</Code>
//	<Message>message</Message></Error><RequestId>id</RequestId></ErrorResponse>
//
// Type is "Receiver" for server faults (receiver true), else "Sender".
func ErrorResponse(xmlns, code, message, requestID string, receiver bool) []byte {
	typ := "Sender"
	if receiver {
		typ = "Receiver"
	}
	out, err := xml.Marshal(errorResponse{
		Xmlns: xmlns, Error: errorBody{Type: typ, Code: code, Message: message}, RequestID: requestID,
	})
	if err != nil { // cannot happen for strings
		return []byte("<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code></Error></ErrorResponse>")
	}
	return out
}
