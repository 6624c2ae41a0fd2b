package api

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// maxInflation bounds a gzip request body once decompressed, as a multiple
// of Config.MaxBodyBytes (the limit on what travels).
const maxInflation = 8

// decodeContentEncoding undoes the request's Content-Encoding. The AWS SDKs
// gzip the bodies of operations with the requestCompression trait (e.g.
// CloudWatch's PutMetricData) once they pass a size (10 KiB by default);
// the signature covers the compressed bytes, so this runs after it is
// checked. "identity" and no header leave the body as is; an unknown
// encoding or a corrupt or oversized gzip stream is a
// SerializationException.
func decodeContentEncoding(r *http.Request, body []byte, maxBody int64) ([]byte, error) {
	enc := strings.TrimSpace(strings.ToLower(r.Header.Get("Content-Encoding")))
	switch enc {
	case "", "identity":
		return body, nil
	case "gzip", "x-gzip":
	default:
		return nil, newProtocolError(http.StatusBadRequest, TypeSerializationException,
			"Unsupported Content-Encoding "+strconv.Quote(truncate(enc, 32))+"; only gzip is accepted.")
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, newProtocolError(http.StatusBadRequest, TypeSerializationException, "The gzip request body is corrupt.")
	}
	limit := maxBody * maxInflation
	out, err := io.ReadAll(io.LimitReader(zr, limit+1))
	if err != nil {
		return nil, newProtocolError(http.StatusBadRequest, TypeSerializationException, "The gzip request body is corrupt.")
	}
	if int64(len(out)) > limit {
		return nil, newProtocolError(http.StatusBadRequest, TypeSerializationException,
			"Request body exceeds the maximum size of "+strconv.FormatInt(limit, 10)+" bytes once decompressed.")
	}
	return out, nil
}
