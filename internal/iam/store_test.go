package iam

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsiam "github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/holdfast/holdfast/internal/clock"
	"github.com/holdfast/holdfast/internal/iam/iamtest"
)

// The model is durable: a service reopened on the same store has the
// users, keys, roles and policies; a write whose commit fails is answered
// ServiceFailure and is not there after a restart.
func TestModelSurvivesReopenAndFailedWrites(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(time.Now())
	e := newEnvAt(t, dir, clk, false)
	ctx := context.Background()
	hank := e.User("hank", allowAll)
	e.Role("ops", trustAccount, allowAll)
	pol, err := e.IAM(root).CreatePolicy(ctx, &awsiam.CreatePolicyInput{PolicyName: aws.String("mp"), PolicyDocument: aws.String(allowAll)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.IAM(root).AttachRolePolicy(ctx, &awsiam.AttachRolePolicyInput{RoleName: aws.String("ops"), PolicyArn: pol.Policy.Arn}); err != nil {
		t.Fatal(err)
	}
	e.close()

	again := newEnvAt(t, dir, clk, false)
	if _, err := again.IAM(hank).ListUsers(ctx, &awsiam.ListUsersInput{}); err != nil {
		t.Fatalf("the key and its policy after reopening: %v", err)
	}
	la, err := again.IAM(root).ListAttachedRolePolicies(ctx, &awsiam.ListAttachedRolePoliciesInput{RoleName: aws.String("ops")})
	if err != nil || len(la.AttachedPolicies) != 1 {
		t.Fatalf("attachment after reopening: %+v %v", la, err)
	}

	again.backend.fail.Store(true)
	_, err = again.IAM(root).CreateUser(ctx, &awsiam.CreateUserInput{UserName: aws.String("ivy")})
	iamtest.WantErr(t, err, "ServiceFailure", "The request processing has failed because of an unknown error, exception or failure.", 500)
	again.close()
	third := newEnvAt(t, dir, clk, false)
	_, err = third.IAM(root).GetUser(ctx, &awsiam.GetUserInput{UserName: aws.String("ivy")})
	iamtest.WantErr(t, err, "NoSuchEntity", "", 404)
	if _, err := third.IAM(hank).ListUsers(ctx, &awsiam.ListUsersInput{}); err != nil {
		t.Fatalf("hank after the failed write and a restart: %v", err)
	}
}
