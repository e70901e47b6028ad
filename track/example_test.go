package track_test

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/trackhq/track/track"
)

// A service that already owns a MeterProvider lets track create its
// counters there. Here a manual reader stands in for the service's exporter.
func ExampleWithMeterProvider() {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(ctx) }()

	tr, err := track.New(ctx, track.WithMeterProvider(mp))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = tr.Shutdown(ctx) }()

	tr.Increment("new-signup")
	tr.Add("cards-checked", 3, attribute.String("result", "fraudulent"))

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range rm.ScopeMetrics[0].Metrics {
		for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
			fmt.Println(m.Name, dp.Attributes.Encoded(attribute.DefaultEncoder()), dp.Value)
		}
	}
	// Output:
	// new-signup  1
	// cards-checked result=fraudulent 3
}

// Counting in a hot loop: a handle skips the name and attribute lookup.
func ExampleCounter() {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(ctx) }()
	tr, _ := track.New(ctx, track.WithMeterProvider(mp))
	defer func() { _ = tr.Shutdown(ctx) }()

	requests := tr.Counter("requests", attribute.String("route", "/signup"))
	for i := 0; i < 1000; i++ {
		requests.Increment()
	}

	var rm metricdata.ResourceMetrics
	_ = reader.Collect(ctx, &rm)
	fmt.Println(rm.ScopeMetrics[0].Metrics[0].Data.(metricdata.Sum[int64]).DataPoints[0].Value)
	// Output: 1000
}
