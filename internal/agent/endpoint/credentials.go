package endpoint

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// Task role credentials, served where the AWS SDKs' container credentials
// provider looks for them:
//
//	/v2/credentials/<credentials-id>
//
// reached at http://169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI
// from containers in bridge and awsvpc mode, and at
// $AWS_CONTAINER_CREDENTIALS_FULL_URI (the agent's listener on loopback)
// with the header Authorization: $AWS_CONTAINER_AUTHORIZATION_TOKEN under
// the process runtime and in host mode. The answers are the ECS agent's
// (its credentials handler, v2): 200 with the credentials, else
//
//	400 {"code":"NoIdInRequest","message":"CredentialsV2Request: No ID in the request","HTTPErrorCode":400}
//	400 {"code":"InvalidIdInRequest","message":"CredentialsV2Request: Credentials not found","HTTPErrorCode":400}
//	503 {"code":"CredentialsUninitialized","message":"CredentialsV2Request: Credentials uninitialized for ID","HTTPErrorCode":503}
//
// An id that needs a token and a request without that exact token are
// answered as an unknown id, so that a guess learns nothing.

// CredentialsPath is the path prefix of the credentials endpoint.
const CredentialsPath = "/v2/credentials"

// RoleCredentials are a task role's temporary credentials.
type RoleCredentials struct {
	RoleARN         string
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expiration      time.Time
}

// Credentials is the agent's store of its tasks' role credentials. It must
// be safe for concurrent use.
type Credentials interface {
	// ByID resolves a credentials id: the task's credentials (a zero
	// AccessKeyID while they are not obtained yet), the token a caller
	// must present ("" for none), and ok=false when the id is unknown or
	// its task has stopped.
	ByID(id string) (c RoleCredentials, token string, ok bool)
	// ForTask returns the credentials the task protection API calls ECS
	// with for the task; ok=false when the task has no role or no
	// credentials yet.
	ForTask(taskARN string) (RoleCredentials, bool)
}

// credentialsResponse is the ECS agent's IAMRoleCredentials, in its key
// order.
type credentialsResponse struct {
	RoleArn         string `json:"RoleArn"`
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string `json:"SecretAccessKey"`
	Token           string `json:"Token"`
	Expiration      string `json:"Expiration"`
}

// credentialsError is the ECS agent's handlers ErrorMessage.
type credentialsError struct {
	Code          string `json:"code"`
	Message       string `json:"message"`
	HTTPErrorCode int
}

const credentialsPrefix = "CredentialsV2Request: "

func writeCredentialsError(w http.ResponseWriter, status int, code, msg string) {
	body, _ := json.Marshal(credentialsError{Code: code, Message: credentialsPrefix + msg, HTTPErrorCode: status})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// serveCredentials answers /v2/credentials and /v2/credentials/<id>.
func (h *handler) serveCredentials(w http.ResponseWriter, r *http.Request, id string) {
	if id == "" {
		writeCredentialsError(w, http.StatusBadRequest, "NoIdInRequest", "No ID in the request")
		return
	}
	var c RoleCredentials
	var token string
	ok := false
	if h.creds != nil {
		c, token, ok = h.creds.ByID(id)
	}
	if ok && token != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(token)) != 1 {
		ok = false
	}
	if !ok {
		writeCredentialsError(w, http.StatusBadRequest, "InvalidIdInRequest", "Credentials not found")
		return
	}
	if c.AccessKeyID == "" {
		writeCredentialsError(w, http.StatusServiceUnavailable, "CredentialsUninitialized", "Credentials uninitialized for ID")
		return
	}
	body, _ := json.Marshal(credentialsResponse{RoleArn: c.RoleARN, AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey,
		Token: c.SessionToken, Expiration: c.Expiration.UTC().Format(time.RFC3339)})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// credentialsID returns the id of a credentials path, and whether p is one.
func credentialsID(p string) (string, bool) {
	if p == CredentialsPath {
		return "", true
	}
	rest, ok := strings.CutPrefix(p, CredentialsPath+"/")
	if !ok || strings.Contains(rest, "/") {
		return "", false
	}
	return rest, true
}
