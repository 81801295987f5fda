// Package aggregate is the mapreduce job's aggregation core: the map
// stage and the fold into per-partition totals that turn a sealed access
// log segment's records into clicks by link and hour, and by link and day with
// their dimension values and visitors, and the encoding of a day's
// dimension counts as link_daily stores them.
//
// It does no I/O: no network, no database, no files. It takes a segment's
// bytes already in memory (decoded with logfmt) and a dims.Classifier, and
// gives back aggregates in memory; pulling segments, the ledger, writing
// to Postgres and the archive are package job's. That keeps it tested and
// benchmarked alone (BenchmarkLocalSegments, BenchmarkMapCombine).
//
// A run maps each segment whole into a worker's Scratch and, once the
// segment has passed every check, folds it into the run's per-partition
// Totals (fold.go): a damaged segment adds nothing. The older path, a
// partial per segment merged again in reduce (MapCombine, Partition,
// Reduce), lives on only in reference_test.go, as the tests' reference.
//
// A Click's and a Day's dimension values are ids of the dims.Shared value
// table of the classifiers that mapped them; a run's partials must all
// come from classifiers of one Shared.
package aggregate
