package cwapi

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cw "github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"
	"github.com/aws/smithy-go/transport/http/protocol/awsquery"
	"go.uber.org/goleak"

	"github.com/holdfast/holdfast/internal/api"
	"github.com/holdfast/holdfast/internal/cloudwatch"
	"github.com/holdfast/holdfast/internal/metricstore"
	"github.com/holdfast/holdfast/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	accessKey = "AKIDCLOUDWATCHTEST"
	secretKey = "cloudwatch-test-secret"
	region    = "us-east-1"
	account   = "123456789012"
)

// server starts the real front door with CloudWatch registered, on loopback.
func server(t testing.TB) (*httptest.Server, *cloudwatch.Service) {
	t.Helper()
	store := metricstore.New(metricstore.Config{})
	svc := cloudwatch.New(cloudwatch.Config{Metrics: store, Region: region, AccountID: account})
	srv := api.New(api.Config{Region: region, AccountID: account, Credentials: map[string]string{accessKey: secretKey}})
	Register(srv, svc)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return hs, svc
}

// client returns aws-sdk-go-v2's CloudWatch client speaking protocol
// ("cbor", its default; "json", AWS JSON 1.0; "query").
func client(url, protocol string) *cw.Client {
	return cw.New(cw.Options{
		Region:           region,
		BaseEndpoint:     aws.String(url),
		Credentials:      credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
		RetryMaxAttempts: 1,
	}, func(o *cw.Options) {
		switch protocol {
		case "json":
			o.Protocol = jsonProtocol()
		case "query":
			o.Protocol = awsquery.New(schemas.GraniteServiceVersion20100801)
		}
	})
}

var protocols = []string{"cbor", "json", "query"}

func jsonProtocol() *awsjson.Protocol { return awsjson.New10(schemas.GraniteServiceVersion20100801) }

func apiCode(t *testing.T, err error) (string, string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v is not an API error", err)
	}
	return ae.ErrorCode(), ae.ErrorMessage()
}

// code is the error code the SDK reports for a modeled error: the Query
// code (from x-amzn-query-error) on JSON and CBOR; on the Query protocol
// the SDK finds the type by that code and reports the shape name.
func code(proto, queryCode, shape string) string {
	if proto == "query" {
		return shape
	}
	return queryCode
}

// TestEveryOperation drives every CloudWatch operation holdfast serves with
// the real aws-sdk-go-v2 client, in each wire protocol.
func TestEveryOperation(t *testing.T) {
	for _, proto := range protocols {
		t.Run(proto, func(t *testing.T) {
			hs, _ := server(t)
			c := client(hs.URL, proto)
			ctx := context.Background()
			now := time.Now().UTC().Truncate(time.Minute)
			dims := []types.Dimension{{Name: aws.String("ClusterName"), Value: aws.String("prod")}, {Name: aws.String("ServiceName"), Value: aws.String("worker")}}

			_, err := c.PutMetricData(ctx, &cw.PutMetricDataInput{Namespace: aws.String("queue"), MetricData: []types.MetricDatum{
				{MetricName: aws.String("Backlog"), Dimensions: dims, Timestamp: aws.Time(now.Add(-2 * time.Minute)), Value: aws.Float64(120), Unit: types.StandardUnitCount},
				{MetricName: aws.String("Backlog"), Dimensions: dims, Timestamp: aws.Time(now.Add(-time.Minute)), Values: []float64{10, 20}, Counts: []float64{1, 3}, Unit: types.StandardUnitCount},
				{MetricName: aws.String("Workers"), Dimensions: dims, Timestamp: aws.Time(now.Add(-2 * time.Minute)),
					StatisticValues: &types.StatisticSet{SampleCount: aws.Float64(2), Sum: aws.Float64(8), Minimum: aws.Float64(3), Maximum: aws.Float64(5)}},
				{MetricName: aws.String("Workers"), Dimensions: dims, Timestamp: aws.Time(now.Add(-time.Minute)), Value: aws.Float64(0)},
				{MetricName: aws.String("Latency"), Timestamp: aws.Time(now.Add(-10 * time.Second)), Value: aws.Float64(7), StorageResolution: aws.Int32(1)},
			}})
			if err != nil {
				t.Fatalf("PutMetricData: %v", err)
			}

			st, err := c.GetMetricStatistics(ctx, &cw.GetMetricStatisticsInput{
				Namespace: aws.String("queue"), MetricName: aws.String("Backlog"), Dimensions: dims,
				StartTime: aws.Time(now.Add(-time.Hour)), EndTime: aws.Time(now), Period: aws.Int32(60),
				Statistics: []types.Statistic{types.StatisticSum, types.StatisticSampleCount, types.StatisticAverage, types.StatisticMaximum},
			})
			if err != nil {
				t.Fatalf("GetMetricStatistics: %v", err)
			}
			if *st.Label != "Backlog" || len(st.Datapoints) != 2 {
				t.Fatalf("GetMetricStatistics: %+v", st)
			}
			slices.SortFunc(st.Datapoints, func(a, b types.Datapoint) int { return a.Timestamp.Compare(*b.Timestamp) })
			d := st.Datapoints[1]
			if *d.Sum != 70 || *d.SampleCount != 4 || *d.Average != 17.5 || *d.Maximum != 20 || d.Unit != types.StandardUnitCount || !d.Timestamp.Equal(now.Add(-time.Minute)) {
				t.Fatalf("Values/Counts datapoint: %+v", d)
			}
			hi, err := c.GetMetricStatistics(ctx, &cw.GetMetricStatisticsInput{Namespace: aws.String("queue"), MetricName: aws.String("Latency"),
				StartTime: aws.Time(now.Add(-time.Minute)), EndTime: aws.Time(now.Add(time.Minute)), Period: aws.Int32(1), Statistics: []types.Statistic{types.StatisticMinimum}})
			if err != nil || len(hi.Datapoints) != 1 || *hi.Datapoints[0].Minimum != 7 {
				t.Fatalf("1-second statistics: %+v %v", hi, err)
			}

			lm, err := c.ListMetrics(ctx, &cw.ListMetricsInput{Namespace: aws.String("queue"), Dimensions: []types.DimensionFilter{{Name: aws.String("ServiceName"), Value: aws.String("worker")}}})
			if err != nil || len(lm.Metrics) != 2 || len(lm.Metrics[0].Dimensions) != 2 {
				t.Fatalf("ListMetrics: %+v %v", lm, err)
			}

			md, err := c.GetMetricData(ctx, &cw.GetMetricDataInput{
				StartTime: aws.Time(now.Add(-10 * time.Minute)), EndTime: aws.Time(now),
				MetricDataQueries: []types.MetricDataQuery{
					{Id: aws.String("m1"), ReturnData: aws.Bool(false), MetricStat: &types.MetricStat{Period: aws.Int32(60), Stat: aws.String("Sum"),
						Metric: &types.Metric{Namespace: aws.String("queue"), MetricName: aws.String("Backlog"), Dimensions: dims}}},
					{Id: aws.String("m2"), ReturnData: aws.Bool(false), MetricStat: &types.MetricStat{Period: aws.Int32(60), Stat: aws.String("Average"),
						Metric: &types.Metric{Namespace: aws.String("queue"), MetricName: aws.String("Workers"), Dimensions: dims}}},
					{Id: aws.String("e1"), Expression: aws.String("m1 / m2"), Label: aws.String("backlog per task")},
					{Id: aws.String("e2"), Expression: aws.String("m1 / IF(FILL(m2, 0) == 0, 1, m2)")},
				},
			})
			if err != nil {
				t.Fatalf("GetMetricData: %v", err)
			}
			if len(md.MetricDataResults) != 2 {
				t.Fatalf("GetMetricData results: %+v", md.MetricDataResults)
			}
			e1, e2 := md.MetricDataResults[0], md.MetricDataResults[1]
			if *e1.Label != "backlog per task" || e1.StatusCode != types.StatusCodeComplete || len(e1.Values) != 1 || e1.Values[0] != 30 || !e1.Timestamps[0].Equal(now.Add(-2*time.Minute)) {
				t.Fatalf("e1 (the minute with no worker is dropped): %+v", e1)
			}
			// FILL puts the guard on every minute of the grid; a minute
			// without backlog counts as 0, as metric math treats missing values.
			if len(e2.Values) != 10 || e2.Values[0] != 70 || e2.Values[1] != 30 || e2.Values[2] != 0 {
				t.Fatalf("e2 (newest first, division by zero guarded): %+v", e2)
			}

			// Alarms.
			_, err = c.PutMetricAlarm(ctx, &cw.PutMetricAlarmInput{
				AlarmName: aws.String("backlog-high"), Namespace: aws.String("queue"), MetricName: aws.String("Backlog"), Dimensions: dims,
				Statistic: types.StatisticAverage, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(2), DatapointsToAlarm: aws.Int32(1),
				Threshold: aws.Float64(100), ComparisonOperator: types.ComparisonOperatorGreaterThanThreshold, TreatMissingData: aws.String("notBreaching"),
				AlarmActions: []string{"arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:1:resource/ecs/service/prod/worker:policyName/out"},
				Tags:         []types.Tag{{Key: aws.String("team"), Value: aws.String("core")}},
			})
			if err != nil {
				t.Fatalf("PutMetricAlarm: %v", err)
			}
			da, err := c.DescribeAlarms(ctx, &cw.DescribeAlarmsInput{AlarmNamePrefix: aws.String("backlog")})
			if err != nil || len(da.MetricAlarms) != 1 {
				t.Fatalf("DescribeAlarms: %+v %v", da, err)
			}
			a := da.MetricAlarms[0]
			if a.StateValue != types.StateValueInsufficientData || *a.StateReason != "Unchecked: Initial alarm creation" || *a.Threshold != 100 ||
				a.ComparisonOperator != types.ComparisonOperatorGreaterThanThreshold || len(a.Dimensions) != 2 || len(a.AlarmActions) != 1 ||
				*a.AlarmArn != "arn:aws:cloudwatch:us-east-1:123456789012:alarm:backlog-high" || a.StateUpdatedTimestamp == nil {
				t.Fatalf("alarm: %+v", a)
			}
			fm, err := c.DescribeAlarmsForMetric(ctx, &cw.DescribeAlarmsForMetricInput{Namespace: aws.String("queue"), MetricName: aws.String("Backlog"), Dimensions: dims})
			if err != nil || len(fm.MetricAlarms) != 1 {
				t.Fatalf("DescribeAlarmsForMetric: %+v %v", fm, err)
			}
			if _, err := c.SetAlarmState(ctx, &cw.SetAlarmStateInput{AlarmName: aws.String("backlog-high"), StateValue: types.StateValueAlarm,
				StateReason: aws.String("drill"), StateReasonData: aws.String(`{"drill":true}`)}); err != nil {
				t.Fatalf("SetAlarmState: %v", err)
			}
			da, _ = c.DescribeAlarms(ctx, &cw.DescribeAlarmsInput{StateValue: types.StateValueAlarm})
			if len(da.MetricAlarms) != 1 || *da.MetricAlarms[0].StateReason != "drill" {
				t.Fatalf("after SetAlarmState: %+v", da.MetricAlarms)
			}
			if _, err := c.DisableAlarmActions(ctx, &cw.DisableAlarmActionsInput{AlarmNames: []string{"backlog-high"}}); err != nil {
				t.Fatalf("DisableAlarmActions: %v", err)
			}
			da, _ = c.DescribeAlarms(ctx, &cw.DescribeAlarmsInput{AlarmNames: []string{"backlog-high"}})
			if *da.MetricAlarms[0].ActionsEnabled {
				t.Fatal("actions still enabled")
			}
			if _, err := c.EnableAlarmActions(ctx, &cw.EnableAlarmActionsInput{AlarmNames: []string{"backlog-high"}}); err != nil {
				t.Fatalf("EnableAlarmActions: %v", err)
			}
			hist, err := c.DescribeAlarmHistory(ctx, &cw.DescribeAlarmHistoryInput{AlarmName: aws.String("backlog-high")})
			if err != nil || len(hist.AlarmHistoryItems) != 2 || hist.AlarmHistoryItems[0].HistoryItemType != types.HistoryItemTypeStateUpdate ||
				*hist.AlarmHistoryItems[0].HistorySummary != "Alarm updated from INSUFFICIENT_DATA to ALARM" {
				t.Fatalf("DescribeAlarmHistory: %+v %v", hist, err)
			}
			arn := a.AlarmArn
			if _, err := c.TagResource(ctx, &cw.TagResourceInput{ResourceARN: arn, Tags: []types.Tag{{Key: aws.String("env"), Value: aws.String("prod")}}}); err != nil {
				t.Fatalf("TagResource: %v", err)
			}
			if _, err := c.UntagResource(ctx, &cw.UntagResourceInput{ResourceARN: arn, TagKeys: []string{"team"}}); err != nil {
				t.Fatalf("UntagResource: %v", err)
			}
			tags, err := c.ListTagsForResource(ctx, &cw.ListTagsForResourceInput{ResourceARN: arn})
			if err != nil || len(tags.Tags) != 1 || *tags.Tags[0].Key != "env" {
				t.Fatalf("ListTagsForResource: %+v %v", tags, err)
			}
			if _, err := c.DeleteAlarms(ctx, &cw.DeleteAlarmsInput{AlarmNames: []string{"backlog-high"}}); err != nil {
				t.Fatalf("DeleteAlarms: %v", err)
			}
			da, _ = c.DescribeAlarms(ctx, &cw.DescribeAlarmsInput{})
			if len(da.MetricAlarms) != 0 {
				t.Fatalf("alarms left: %+v", da.MetricAlarms)
			}
		})
	}
}

// TestErrors checks the error of each kind in each protocol: the code the
// SDK reports (modeled errors as their types, with the Query code from the
// x-amzn-query-error header) and the message.
func TestErrors(t *testing.T) {
	for _, proto := range protocols {
		t.Run(proto, func(t *testing.T) {
			hs, _ := server(t)
			c := client(hs.URL, proto)
			ctx := context.Background()

			_, err := c.PutMetricData(ctx, &cw.PutMetricDataInput{Namespace: aws.String("AWS/SQS"), MetricData: []types.MetricDatum{{MetricName: aws.String("x"), Value: aws.Float64(1)}}})
			var ipv *types.InvalidParameterValueException
			if !errors.As(err, &ipv) {
				t.Fatalf("AWS/ namespace: %v", err)
			}
			if c, msg := apiCode(t, err); c != code(proto, "InvalidParameterValue", "InvalidParameterValueException") || msg != "The value AWS/SQS for parameter Namespace is invalid." {
				t.Fatalf("AWS/ namespace: %s %q", c, msg)
			}

			_, err = c.PutMetricData(ctx, &cw.PutMetricDataInput{Namespace: aws.String("q"), MetricData: []types.MetricDatum{
				{MetricName: aws.String("x"), Value: aws.Float64(1), StatisticValues: &types.StatisticSet{SampleCount: aws.Float64(1), Sum: aws.Float64(1), Minimum: aws.Float64(1), Maximum: aws.Float64(1)}}}})
			var ipc *types.InvalidParameterCombinationException
			if c, _ := apiCode(t, err); !errors.As(err, &ipc) || c != code(proto, "InvalidParameterCombination", "InvalidParameterCombinationException") {
				t.Fatalf("Value and StatisticValues: %v", err)
			}

			_, err = c.DeleteAlarms(ctx, &cw.DeleteAlarmsInput{AlarmNames: []string{"nope"}})
			var rnf *types.ResourceNotFound
			if c, msg := apiCode(t, err); !errors.As(err, &rnf) || c != "ResourceNotFound" || msg != "The following alarms were not found: nope." {
				t.Fatalf("DeleteAlarms unknown: %v", err)
			}

			_, err = c.PutMetricAlarm(ctx, &cw.PutMetricAlarmInput{AlarmName: aws.String("a"), Namespace: aws.String("q"), MetricName: aws.String("x"),
				Statistic: types.StatisticSum, Period: aws.Int32(45), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(1),
				ComparisonOperator: types.ComparisonOperatorGreaterThanThreshold})
			var ve *types.ValidationException
			if c, msg := apiCode(t, err); !errors.As(err, &ve) || c != code(proto, "ValidationError", "ValidationException") || msg != "Period must be 10, 20, 30 or a multiple of 60" {
				t.Fatalf("Period 45: %s %q", c, msg)
			}

			_, err = c.ListMetrics(ctx, &cw.ListMetricsInput{NextToken: aws.String("%%%")})
			var bad *types.InvalidNextToken
			if c, _ := apiCode(t, err); !errors.As(err, &bad) || c != "InvalidNextToken" {
				t.Fatalf("bad NextToken: %v", err)
			}

			_, err = c.SetAlarmState(ctx, &cw.SetAlarmStateInput{AlarmName: aws.String("nope"), StateValue: types.StateValueOk, StateReason: aws.String("x")})
			if c, _ := apiCode(t, err); c != "ResourceNotFound" {
				t.Fatalf("SetAlarmState unknown: %v", err)
			}
		})
	}
}

// TestQueryCompatibleHeader checks the raw wire: a JSON 1.0 and a CBOR
// error carry x-amzn-query-error with the Query code and the fault.
func TestQueryCompatibleHeader(t *testing.T) {
	hs, _ := server(t)
	creds := testutil.Credentials{AccessKeyID: accessKey, SecretAccessKey: secretKey}
	for _, c := range []struct {
		path, ctype, target string
		body                []byte
	}{
		{"/", "application/x-amz-json-1.0", ServiceName + ".DeleteAlarms", []byte(`{"AlarmNames":["nope"]}`)},
		{"/service/" + ServiceName + "/operation/DeleteAlarms", "application/cbor", "", mustCBOR(t, map[string]any{"AlarmNames": []string{"nope"}})},
	} {
		req, _ := http.NewRequest(http.MethodPost, hs.URL+c.path, bytes.NewReader(c.body))
		req.Header.Set("Content-Type", c.ctype)
		if c.target != "" {
			req.Header.Set("X-Amz-Target", c.target)
		} else {
			req.Header.Set("Smithy-Protocol", "rpc-v2-cbor")
		}
		testutil.Sign(t, req, c.body, creds, SigningName, region, time.Now())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 || resp.Header.Get("X-Amzn-Query-Error") != "ResourceNotFound;Sender" {
			t.Fatalf("%s: status %d, x-amzn-query-error %q", c.path, resp.StatusCode, resp.Header.Get("X-Amzn-Query-Error"))
		}
	}
}

func mustCBOR(t *testing.T, v any) []byte {
	t.Helper()
	b, err := Codec{}.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCBORTimestampsAndNumbers decodes what other clients send: integer
// epoch seconds, integers where doubles belong, indefinite-length maps.
func TestCBORTimestampsAndNumbers(t *testing.T) {
	// {_ "Namespace": "q", "MetricData": [_ {_ "MetricName": "m", "Value": 3, "Timestamp": 1(1764072000)}]}
	raw := []byte{0xbf, 0x69, 'N', 'a', 'm', 'e', 's', 'p', 'a', 'c', 'e', 0x61, 'q',
		0x6a, 'M', 'e', 't', 'r', 'i', 'c', 'D', 'a', 't', 'a', 0x9f,
		0xbf, 0x6a, 'M', 'e', 't', 'r', 'i', 'c', 'N', 'a', 'm', 'e', 0x61, 'm',
		0x65, 'V', 'a', 'l', 'u', 'e', 0x03,
		0x69, 'T', 'i', 'm', 'e', 's', 't', 'a', 'm', 'p', 0xc1, 0x1a, 0x69, 0x25, 0x5e, 0x40,
		0xff, 0xff, 0xff}
	var in cloudwatch.PutMetricDataInput
	if err := (Codec{}).Unmarshal(raw, &in); err != nil {
		t.Fatal(err)
	}
	if *in.Namespace != "q" || len(in.MetricData) != 1 || *in.MetricData[0].Value != 3 || in.MetricData[0].Timestamp.Unix() != 0x69255e40 {
		t.Fatalf("decoded %+v %+v", in, in.MetricData)
	}
	for _, bad := range [][]byte{{0xff}, append(raw[:len(raw):len(raw)], 0x00), {0xa1, 0x69, 'N', 'a', 'm', 'e', 's', 'p', 'a', 'c', 'e', 0x01}} {
		if err := (Codec{}).Unmarshal(bad, &in); err == nil {
			t.Errorf("decoded % x", bad)
		}
	}
	if !strings.Contains(string(mustCBOR(t, cloudwatch.GetMetricDataOutput{})), "MetricDataResults") {
		t.Fatal("empty result list not written")
	}
}
