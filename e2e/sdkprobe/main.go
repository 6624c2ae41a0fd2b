// Command sdkprobe is a task for the end-to-end tests: an unmodified
// aws-sdk-go-v2 program, configured the default way (LoadDefaultConfig:
// the container credentials provider, AWS_ENDPOINT_URL, AWS_REGION), as an
// application inside an ECS task is.
//
//	sdkprobe identity FILE
//	    every 250 ms, asks STS who it is and appends one JSON line to FILE:
//	    {"at":..., "arn":..., "accessKeyId":..., "error":...}
//	sdkprobe protect FILE
//	    protects its own task (its ARN from ECS_CONTAINER_METADATA_URI_V4)
//	    with ecs:UpdateTaskProtection, tries ecs:StopTask on it, and writes
//	    the outcomes to FILE; then waits to be stopped.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

type line struct {
	At          time.Time `json:"at"`
	ARN         string    `json:"arn,omitempty"`
	AccessKeyID string    `json:"accessKeyId,omitempty"`
	Error       string    `json:"error,omitempty"`
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: sdkprobe identity|protect FILE")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "LoadDefaultConfig:", err)
		os.Exit(1)
	}
	f, err := os.OpenFile(os.Args[2], os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	enc := json.NewEncoder(f)
	switch os.Args[1] {
	case "identity":
		c := sts.NewFromConfig(cfg)
		for ctx.Err() == nil {
			l := line{At: time.Now()}
			out, err := c.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			if err != nil {
				l.Error = err.Error()
			} else {
				l.ARN = aws.ToString(out.Arn)
			}
			if creds, err := cfg.Credentials.Retrieve(ctx); err == nil {
				l.AccessKeyID = creds.AccessKeyID
			}
			if ctx.Err() == nil {
				_ = enc.Encode(l)
			}
			select {
			case <-ctx.Done():
			case <-time.After(250 * time.Millisecond):
			}
		}
	case "protect":
		arn, err := ownTaskARN(ctx)
		result := map[string]string{"task": arn}
		if err != nil {
			result["metadata"] = err.Error()
		}
		c := ecs.NewFromConfig(cfg)
		if _, err := c.UpdateTaskProtection(ctx, &ecs.UpdateTaskProtectionInput{Cluster: aws.String(os.Getenv("CLUSTER")),
			Tasks: []string{arn}, ProtectionEnabled: true, ExpiresInMinutes: aws.Int32(5)}); err != nil {
			result["protect"] = err.Error()
		} else {
			result["protect"] = "ok"
		}
		if _, err := c.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String(os.Getenv("CLUSTER")), Task: aws.String(arn)}); err != nil {
			result["stop"] = err.Error()
		} else {
			result["stop"] = "ok"
		}
		_ = enc.Encode(result)
		<-ctx.Done()
	}
	_ = f.Close()
}

// ownTaskARN reads the task's ARN from the task metadata endpoint.
func ownTaskARN(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, os.Getenv("ECS_CONTAINER_METADATA_URI_V4")+"/task", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var md struct {
		TaskARN string `json:"TaskARN"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&md); err != nil {
		return "", err
	}
	return md.TaskARN, nil
}
