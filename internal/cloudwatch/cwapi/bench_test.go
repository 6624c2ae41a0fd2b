package cwapi

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cw "github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
)

// BenchmarkPutMetricDataSDK measures PutMetricData end to end: the real
// aws-sdk-go-v2 CloudWatch client (RPC v2 CBOR, gzip as the SDK does it
// past 10 KiB) over loopback HTTP into the real front door (SigV4, decode,
// validation) and the metric store, in batches of 1,000 datapoints (100
// series x 10), from 8 concurrent clients.
func BenchmarkPutMetricDataSDK(b *testing.B) {
	for _, proto := range []string{"cbor", "json"} {
		b.Run(proto, func(b *testing.B) {
			hs, _ := server(b)
			c := cw.New(cw.Options{
				Region: region, BaseEndpoint: aws.String(hs.URL), RetryMaxAttempts: 1,
				Credentials:                 credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
				RequestMinCompressSizeBytes: 10240,
				HTTPClient:                  &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
			}, func(o *cw.Options) {
				if proto == "json" {
					o.Protocol = jsonProtocol()
				}
			})
			data := make([]types.MetricDatum, 1000)
			for i := range data {
				data[i] = types.MetricDatum{
					MetricName: aws.String("Latency"), Unit: types.StandardUnitMilliseconds, StorageResolution: aws.Int32(1),
					Dimensions: []types.Dimension{{Name: aws.String("ServiceName"), Value: aws.String(fmt.Sprint("svc-", i%100))},
						{Name: aws.String("ClusterName"), Value: aws.String("prod")}},
					Value: aws.Float64(float64(i)),
				}
			}
			const workers = 8
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if _, err := c.PutMetricData(context.Background(), &cw.PutMetricDataInput{Namespace: aws.String("bench"), MetricData: data}); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N*len(data))/time.Since(start).Seconds(), "datapoints/s")
		})
	}
}
