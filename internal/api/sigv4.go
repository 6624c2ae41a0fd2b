package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// SigV4 constants. SigningName is ECS's (the holdfast agent signs its own
// protocol calls with it too); every other service names its own in
// Service.SigningName.
const (
	SigningName   = "ecs"
	authAlgorithm = "AWS4-HMAC-SHA256"
	amzDateFormat = "20060102T150405Z"
	maxClockSkew  = 15 * time.Minute
	scopeTerm     = "aws4_request"
)

// Messages of the authentication errors, as AWS JSON services word them.
const (
	msgMissingAuthToken   = "Missing Authentication Token"
	msgUnrecognizedClient = "The security token included in the request is invalid."
	msgExpiredToken       = "The security token included in the request is expired"
	msgSignatureMismatch  = "The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)

// credential is a parsed "Authorization: AWS4-HMAC-SHA256 ..." header.
type credential struct {
	accessKeyID   string
	date          string // YYYYMMDD from the scope
	region        string
	service       string
	terminator    string
	signedHeaders []string // lower case, as sent
	signature     string   // lower-case hex
}

func authErr(typ, msg string) *protocolError {
	return newProtocolError(http.StatusBadRequest, typ, msg)
}

// parseAuthorization parses the SigV4 Authorization header value. A value
// that is not a complete SigV4 header is an IncompleteSignatureException with
// AWS's wording.
func parseAuthorization(v string, hasDate bool) (credential, error) {
	var c credential
	rest, ok := strings.CutPrefix(v, authAlgorithm+" ")
	if !ok {
		rest = "" // unsupported scheme: every parameter is "missing"
	}
	var haveCred, haveSH, haveSig bool
	for part := range strings.SplitSeq(rest, ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			haveCred = true
			fields := strings.Split(val, "/")
			if len(fields) != 5 {
				return c, authErr(TypeIncompleteSignature,
					"Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '"+truncate(val, 128)+"'")
			}
			c.accessKeyID, c.date, c.region, c.service, c.terminator = fields[0], fields[1], fields[2], fields[3], fields[4]
		case "SignedHeaders":
			haveSH = true
			if val != "" {
				c.signedHeaders = strings.Split(strings.ToLower(val), ";")
			}
		case "Signature":
			haveSig = true
			c.signature = strings.ToLower(val)
		}
	}
	var missing []string
	if !haveCred {
		missing = append(missing, "Authorization header requires 'Credential' parameter.")
	}
	if !haveSig {
		missing = append(missing, "Authorization header requires 'Signature' parameter.")
	}
	if !haveSH {
		missing = append(missing, "Authorization header requires 'SignedHeaders' parameter.")
	}
	if !hasDate {
		missing = append(missing, "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}
	if len(missing) > 0 {
		return c, authErr(TypeIncompleteSignature,
			strings.Join(missing, " ")+" Authorization="+truncate(v, 256))
	}
	return c, nil
}

// authenticated is what the first authentication step hands to the second.
type authenticated struct {
	cred         credential
	secret       string
	sessionToken string
	signedAt     time.Time
	principal    Principal
}

// parseScope returns the service of the credential scope of a SigV4
// Authorization header, or "" when the header does not have one.
func parseScope(authz string) string {
	rest, ok := strings.CutPrefix(authz, authAlgorithm+" ")
	if !ok {
		return ""
	}
	for part := range strings.SplitSeq(rest, ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
		if k == "Credential" {
			fields := strings.Split(val, "/")
			if len(fields) == 5 {
				return fields[3]
			}
		}
	}
	return ""
}

// checkCredential performs everything that does not need the body: the
// header is present and well formed, the access key is known (and its
// session token valid and unexpired), the scope is the service's signing
// name, the region and aws4_request, and the signing time is within 15
// minutes of the server's clock. It runs before the body is read, so that
// anonymous callers are refused before they can make the server buffer
// anything.
func (s *Server) checkCredential(r *http.Request, svc *Service) (authenticated, error) {
	signingName, extraRegion := SigningName, ""
	if svc != nil {
		signingName, extraRegion = svc.SigningName, svc.SigningRegion
	}
	var a authenticated
	authz := r.Header.Get("Authorization")
	if authz == "" {
		return a, authErr(TypeMissingAuthToken, msgMissingAuthToken)
	}
	amzDate := r.Header.Get("X-Amz-Date")
	cred, err := parseAuthorization(authz, amzDate != "")
	if err != nil {
		return a, err
	}
	token := r.Header.Get("X-Amz-Security-Token")
	resolved, err := s.lookupKey(r.Context(), cred.accessKeyID, token)
	if err != nil {
		return a, err
	}
	now := s.now().UTC()
	if !resolved.Expiration.IsZero() && !now.Before(resolved.Expiration) {
		return a, authErr(TypeExpiredToken, msgExpiredToken)
	}
	if cred.terminator != scopeTerm {
		return a, authErr(TypeInvalidSignature,
			"Credential should be scoped with a valid terminator: 'aws4_request', not '"+truncate(cred.terminator, 64)+"'.")
	}
	if cred.service != signingName {
		return a, authErr(TypeInvalidSignature,
			"Credential should be scoped to correct service: '"+signingName+"'.")
	}
	if cred.region != s.cfg.Region && (extraRegion == "" || cred.region != extraRegion) {
		return a, authErr(TypeInvalidSignature,
			"Credential should be scoped to a valid region, not '"+truncate(cred.region, 64)+"'.")
	}
	signedAt, err := time.Parse(amzDateFormat, amzDate)
	if err != nil {
		return a, authErr(TypeIncompleteSignature,
			"X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
	}
	if day := signedAt.Format("20060102"); day != cred.date {
		return a, authErr(TypeInvalidSignature,
			"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '"+
				truncate(cred.date, 16)+"' != '"+day+"', from '"+amzDate+"'.")
	}
	switch {
	case signedAt.Before(now.Add(-maxClockSkew)):
		return a, authErr(TypeInvalidSignature, "Signature expired: "+amzDate+" is now earlier than "+
			now.Add(-maxClockSkew).Format(amzDateFormat)+" ("+now.Format(amzDateFormat)+" - 15 min.)")
	case signedAt.After(now.Add(maxClockSkew)):
		return a, authErr(TypeInvalidSignature, "Signature not yet current: "+amzDate+" is still later than "+
			now.Add(maxClockSkew).Format(amzDateFormat)+" ("+now.Format(amzDateFormat)+" + 15 min.)")
	}
	return authenticated{cred: cred, secret: resolved.SecretAccessKey, sessionToken: token,
		signedAt: signedAt, principal: resolved.Principal}, nil
}

// lookupKey resolves an access key: the root's keys from Config.Credentials
// (which take no session token), then Config.Identities. A key that does
// not resolve, or whose session token is not its own, is an
// UnrecognizedClientException.
func (s *Server) lookupKey(ctx context.Context, accessKeyID, token string) (Credential, error) {
	if secret, ok := s.credentials[accessKeyID]; ok {
		if token != "" {
			return Credential{}, authErr(TypeUnrecognizedClient, msgUnrecognizedClient)
		}
		return Credential{SecretAccessKey: secret, Principal: RootPrincipal(s.cfg.AccountID, accessKeyID)}, nil
	}
	if s.cfg.Identities == nil {
		return Credential{}, authErr(TypeUnrecognizedClient, msgUnrecognizedClient)
	}
	cred, err := s.cfg.Identities.LookupAccessKey(ctx, accessKeyID, token)
	switch {
	case errors.Is(err, ErrUnknownAccessKey):
		return Credential{}, authErr(TypeUnrecognizedClient, msgUnrecognizedClient)
	case err != nil:
		return Credential{}, fmt.Errorf("look up access key: %w", err)
	case cred.SessionToken != token:
		return Credential{}, authErr(TypeUnrecognizedClient, msgUnrecognizedClient)
	}
	cred.Principal.AccessKeyID = accessKeyID
	return cred, nil
}

// verifySignature recomputes the signature with aws-sdk-go-v2's signer over
// a copy of the request that carries only the headers the client signed, and
// compares it in constant time.
func (s *Server) verifySignature(ctx context.Context, r *http.Request, body []byte, a authenticated) error {
	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	for _, scheme := range signingSchemes(r) {
		sig, err := s.computeSignature(ctx, r, scheme, body, payloadHash, a)
		if err != nil {
			return err
		}
		if hmac.Equal([]byte(sig), []byte(a.cred.signature)) {
			return nil
		}
	}
	return authErr(TypeInvalidSignature, msgSignatureMismatch)
}

// signingSchemes is the URL scheme the client most likely signed with. The
// signer drops a default port from the host (":80" for http, ":443" for
// https); behind a TLS-terminating proxy the scheme the client used differs
// from ours, so for those two ports both are tried.
func signingSchemes(r *http.Request) []string {
	primary, other := "http", "https"
	if r.TLS != nil {
		primary, other = other, primary
	}
	if _, port, err := net.SplitHostPort(r.Host); err == nil && (port == "80" || port == "443") {
		return []string{primary, other}
	}
	return []string{primary}
}

func (s *Server) computeSignature(ctx context.Context, r *http.Request, scheme string, body []byte, payloadHash string, a authenticated) (string, error) {
	req := &http.Request{
		Method: r.Method,
		URL: &url.URL{
			Scheme:   scheme,
			Host:     r.Host,
			Path:     r.URL.Path,
			RawPath:  r.URL.RawPath,
			RawQuery: r.URL.RawQuery,
		},
		Host:   r.Host,
		Header: make(http.Header),
	}
	creds := aws.Credentials{AccessKeyID: a.cred.accessKeyID, SecretAccessKey: a.secret}
	for _, h := range a.cred.signedHeaders {
		switch h {
		case "host", "x-amz-date":
			// The signer derives these itself from req.Host and signingTime.
		case "content-length":
			// The signer signs content-length exactly when ContentLength > 0.
			req.ContentLength = int64(len(body))
		case "x-amz-security-token":
			// Temporary credentials: checkCredential verified the token; it
			// is also part of the signature.
			creds.SessionToken = a.sessionToken
		default:
			for _, v := range r.Header.Values(h) {
				req.Header.Add(h, v)
			}
		}
	}
	if err := s.signer.SignHTTP(ctx, creds, req, payloadHash, a.cred.service, a.cred.region, a.signedAt); err != nil {
		return "", err
	}
	_, sig, _ := strings.Cut(req.Header.Get("Authorization"), "Signature=")
	return sig, nil
}
