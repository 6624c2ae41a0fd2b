package endpoint

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"
)

// Error codes and messages of the task protection API (ECS agent texts).
const (
	codeInvalidParameter = "InvalidParameterException"
	codeResourceNotFound = "ResourceNotFoundException"
	codeServer           = "ServerException"
	codeRequestCanceled  = "RequestCanceled"

	msgDecodeFailed     = "UpdateTaskProtection: failed to decode request"
	msgMissingEnabled   = "Invalid request: does not contain 'ProtectionEnabled' field"
	msgTaskNotFound     = "Failed to find a task for the request"
	msgTimedOut         = "Timed out calling ECS Task Protection API"
	msgUnexpected       = "Unexpected error occurred"
	msgExpiresRange     = "ExpiresInMinutes must be between 1 and 2880"
	msgNoControlPlane   = "Task protection is not available: the agent has no ECS client"
	msgNoRole           = "Invalid Request: no task IAM role credentials available for task"
	codeAccessDenied    = "AccessDeniedException"
	maxUpdateBodyBytes  = 64 << 10
	protectionJSONCType = "application/json"
)

// updateRequest is the PUT body. The field names (no tags) make
// encoding/json match keys case-insensitively, as in the ECS agent.
type updateRequest struct {
	ProtectionEnabled *bool
	ExpiresInMinutes  *int64
}

// Response envelope. Field order and tags give the ECS agent's key order and
// null rendering.
type protectionResponse struct {
	RequestID  *string          `json:"requestID,omitempty"`
	Protection *protectedTask   `json:"protection,omitempty"`
	Failure    *protectionFail  `json:"failure,omitempty"`
	Error      *protectionError `json:"error,omitempty"`
}

type protectedTask struct {
	ExpirationDate    *time.Time
	ProtectionEnabled bool
	TaskArn           *string
}

type protectionFail struct {
	Arn    *string
	Detail *string
	Reason *string
}

type protectionError struct {
	Arn     string `json:"Arn,omitempty"`
	Code    string
	Message string
}

func writeProtection(w http.ResponseWriter, status int, resp protectionResponse) {
	body, err := json.Marshal(resp)
	if err != nil {
		// Only reachable with a time outside years 0-9999 from ECS.
		arn := ""
		if resp.Protection != nil && resp.Protection.TaskArn != nil {
			arn = *resp.Protection.TaskArn
		}
		status = http.StatusInternalServerError
		body, _ = json.Marshal(protectionResponse{Error: &protectionError{Arn: arn, Code: codeServer, Message: msgUnexpected}})
	}
	w.Header().Set("Content-Type", protectionJSONCType)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeProtectionError(w http.ResponseWriter, status int, arn, code, msg string) {
	writeProtection(w, status, protectionResponse{Error: &protectionError{Arn: arn, Code: code, Message: msg}})
}

// lookupTask resolves the endpoint id to a task ARN, answering 404 or 500
// itself when it cannot.
func (h *handler) lookupTask(w http.ResponseWriter, id string) (string, bool) {
	if h.state == nil {
		writeProtectionError(w, http.StatusNotFound, "", codeResourceNotFound, msgTaskNotFound)
		return "", false
	}
	task, _, ok := h.state.Lookup(id)
	if !ok {
		writeProtectionError(w, http.StatusNotFound, "", codeResourceNotFound, msgTaskNotFound)
		return "", false
	}
	if task.TaskARN == "" {
		writeProtectionError(w, http.StatusInternalServerError, "", codeServer, msgTaskNotFound)
		return "", false
	}
	return task.TaskARN, true
}

func (h *handler) getProtection(w http.ResponseWriter, r *http.Request, id string) {
	arn, ok := h.lookupTask(w, id)
	if !ok {
		return
	}
	asTask, ok := h.taskRole(w, arn)
	if !ok {
		return
	}
	if h.ecs == nil {
		writeProtectionError(w, http.StatusInternalServerError, arn, codeServer, msgNoControlPlane)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.callTimeout)
	defer cancel()
	out, err := h.ecs.GetTaskProtection(ctx, &ecs.GetTaskProtectionInput{
		Cluster: aws.String(h.cluster),
		Tasks:   []string{arn},
	}, asTask...)
	if err != nil {
		h.writeECSError(w, arn, "GetTaskProtection", err)
		return
	}
	h.writeECSOutput(w, arn, "GetTaskProtection", out.ProtectedTasks, out.Failures)
}

func (h *handler) updateProtection(w http.ResponseWriter, r *http.Request, id string) {
	var req updateRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxUpdateBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeProtectionError(w, http.StatusBadRequest, "", codeInvalidParameter, msgDecodeFailed)
		return
	}
	arn, ok := h.lookupTask(w, id)
	if !ok {
		return
	}
	if req.ProtectionEnabled == nil {
		writeProtectionError(w, http.StatusBadRequest, arn, codeInvalidParameter, msgMissingEnabled)
		return
	}
	asTask, ok := h.taskRole(w, arn)
	if !ok {
		return
	}
	in := &ecs.UpdateTaskProtectionInput{
		Cluster:           aws.String(h.cluster),
		Tasks:             []string{arn},
		ProtectionEnabled: *req.ProtectionEnabled,
	}
	if req.ExpiresInMinutes != nil {
		v := *req.ExpiresInMinutes
		if v < math.MinInt32 || v > math.MaxInt32 {
			writeProtectionError(w, http.StatusBadRequest, arn, codeInvalidParameter, msgExpiresRange)
			return
		}
		in.ExpiresInMinutes = aws.Int32(int32(v))
	}
	if h.ecs == nil {
		writeProtectionError(w, http.StatusInternalServerError, arn, codeServer, msgNoControlPlane)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.callTimeout)
	defer cancel()
	out, err := h.ecs.UpdateTaskProtection(ctx, in, asTask...)
	if err != nil {
		h.writeECSError(w, arn, "UpdateTaskProtection", err)
		return
	}
	h.writeECSOutput(w, arn, "UpdateTaskProtection", out.ProtectedTasks, out.Failures)
}

// taskRole returns the option that makes an ECS call as the task's role,
// as the ECS agent calls ECS with the task's credentials; a task without
// them is answered 403, as the ECS agent answers. With
// ProtectWithClientCredentials (or without a Credentials store) the call is
// made with the client's own credentials.
func (h *handler) taskRole(w http.ResponseWriter, arn string) ([]func(*ecs.Options), bool) {
	if h.asClient {
		return nil, true
	}
	c, ok := h.creds.ForTask(arn)
	if !ok || c.AccessKeyID == "" {
		writeProtectionError(w, http.StatusForbidden, arn, codeAccessDenied, msgNoRole)
		return nil, false
	}
	p := credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
	return []func(*ecs.Options){func(o *ecs.Options) { o.Credentials = p }}, true
}

// writeECSOutput validates the ECS answer: one failure wins (200 failure
// body), more than one failure or protected task is unexpected, and so is an
// empty answer (where the ECS agent panics).
func (h *handler) writeECSOutput(w http.ResponseWriter, arn, op string, tasks []ecstypes.ProtectedTask, failures []ecstypes.Failure) {
	switch {
	case len(failures) > 1 || (len(failures) == 0 && len(tasks) != 1):
		h.log.Warn("unexpected ECS task protection answer", "op", op, "task", arn,
			"protectedTasks", len(tasks), "failures", len(failures))
		writeProtectionError(w, http.StatusInternalServerError, arn, codeServer, msgUnexpected)
	case len(failures) == 1:
		f := failures[0]
		writeProtection(w, http.StatusOK, protectionResponse{Failure: &protectionFail{Arn: f.Arn, Detail: f.Detail, Reason: f.Reason}})
	default:
		t := tasks[0]
		exp := t.ExpirationDate
		if exp != nil {
			u := exp.UTC()
			exp = &u
		}
		writeProtection(w, http.StatusOK, protectionResponse{Protection: &protectedTask{
			ExpirationDate:    exp,
			ProtectionEnabled: t.ProtectionEnabled,
			TaskArn:           t.TaskArn,
		}})
	}
}

// writeECSError maps an error from the ECS call (spec §6).
func (h *handler) writeECSError(w http.ResponseWriter, arn, op string, err error) {
	status, resp := mapECSError(arn, err)
	h.log.Warn("ECS task protection call failed", "op", op, "task", arn,
		"status", status, "code", resp.Error.Code, "err", err)
	writeProtection(w, status, resp)
}

func mapECSError(arn string, err error) (int, protectionResponse) {
	var canceled interface{ CanceledError() bool }
	if errors.As(err, &canceled) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return http.StatusGatewayTimeout, protectionResponse{Error: &protectionError{Arn: arn, Code: codeRequestCanceled, Message: msgTimedOut}}
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		e := &protectionError{Arn: arn, Code: apiErr.ErrorCode(), Message: apiErr.ErrorMessage()}
		var re *awshttp.ResponseError
		if errors.As(err, &re) {
			status := re.HTTPStatusCode()
			if status < 100 || status > 599 {
				status = http.StatusInternalServerError
			}
			rid := re.RequestID
			return status, protectionResponse{RequestID: &rid, Error: e}
		}
		return http.StatusInternalServerError, protectionResponse{Error: e}
	}
	return http.StatusInternalServerError, protectionResponse{Error: &protectionError{Arn: arn, Code: codeServer, Message: err.Error()}}
}
