// The interop tests start brokers and many client processes on a 2-core machine: run test
// classes one after another so timings (crash, latest-offset races) stay predictable.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
