package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/holdfast/holdfast/internal/api/awsquery"
	"github.com/holdfast/holdfast/internal/domain"
)

// DecodeRequest decodes the request body of the call ctx belongs to into v
// (a pointer to a struct), in the call's protocol: AWS JSON with Decode,
// Query parameters with awsquery.Decode, RPC v2 CBOR with the service's
// Codec. An empty CBOR body is an empty input. A body that does not fit v
// is a SerializationException (ValidationError in the Query protocol).
// Outside a request (no call in ctx) the body is decoded as AWS JSON.
func DecodeRequest(ctx context.Context, body []byte, v any) error {
	c := callFrom(ctx)
	if c == nil {
		return Decode(body, v)
	}
	switch c.proto {
	case ProtocolQuery:
		err := awsquery.Decode(c.form, v)
		var qe *awsquery.Error
		if errors.As(err, &qe) {
			return newProtocolError(http.StatusBadRequest, TypeSerializationException, truncate(qe.Error(), 256))
		}
		return err
	case ProtocolCBOR:
		if len(body) == 0 {
			return nil
		}
		if err := c.svc.CBOR.Unmarshal(body, v); err != nil {
			return newProtocolError(http.StatusBadRequest, TypeSerializationException,
				"Malformed CBOR request body: "+truncate(err.Error(), 200))
		}
		return nil
	}
	return Decode(body, v)
}

func isDomainError(err error) bool {
	var de *domain.Error
	return errors.As(err, &de)
}
