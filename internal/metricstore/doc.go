// Package metricstore keeps CloudWatch-style metric data in memory, bounded,
// apart from the state store: fifty thousand datapoints a second must never
// become fifty thousand durable writes to bolt or etcd.
//
// # Model
//
// A series is one metric identity: namespace, metric name and a set of
// dimensions (name/value pairs, at most one per name, kept sorted by name).
// Each series holds up to two rings of buckets, one per storage resolution,
// as CloudWatch keeps them:
//
//   - the standard ring aggregates every datapoint into 60-second buckets and
//     keeps them for Config.StandardRetention (15 days by default);
//   - the high-resolution ring exists only for series that received data
//     with StorageResolution 1 and aggregates it into 1-second buckets kept
//     for Config.HighResRetention (3 hours by default).
//
// A bucket is a statistic set (SampleCount, Sum, Minimum, Maximum) plus the
// unit of the last datapoint written to it; a single value is the set
// {1, v, v, v}, and a Values/Counts pair is folded into one set before it
// reaches the store. Queries aggregate buckets into any period that is a
// multiple of the ring's resolution: periods under a minute read the
// high-resolution ring, a minute or more reads the standard ring. Percentiles
// are not kept: a bucket stores no distribution.
//
// A ring is a slice kept sorted by bucket time. Data arriving in time order
// (the normal case) is an append or a merge into the last bucket; late data
// is a binary search and, for a new bucket, an insert. Buckets older than the
// retention are dropped on the next write to that ring, and a full ring
// drops its oldest bucket. Memory per series is therefore bounded by its
// retention, and the number of series by Config.MaxSeries: a write that would
// create more series first sweeps series that hold no data within the
// retention, and fails with a *LimitError (writing nothing) if that is not
// enough.
//
// # Concurrency
//
// One RWMutex guards the series map. Writes to existing series hold it for
// reading and lock each series briefly, so concurrent writers to different
// series do not wait for each other; creating series or sweeping holds it for
// writing. Put is all-or-nothing with respect to the series limit.
//
// # Persistence
//
// Save and Load write and read a snapshot (a versioned gob stream). The
// store does not persist on its own; the owner decides when (periodically
// and on shutdown). Datapoints written after the last snapshot are lost on a
// crash, which is the trade this package exists for.
package metricstore
