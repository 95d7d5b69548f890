/**
 * Coalesces calls made by concurrent jobs of one process into batches: calls
 * submitted in the same turn of the event loop, or while earlier batches are
 * still in flight, go out together. Nothing waits for a timer — at low load a
 * call goes out alone on the next turn; under load batches grow by themselves
 * (the classic group-commit shape).
 *
 * A batch that fails (a deadlock, a malformed id, a lost connection) is retried
 * item by item with `runOne`, so one bad item never fails its neighbours, and a
 * failure ends up at the caller it belongs to. That is safe because a batch is
 * one statement: it changed everything or nothing.
 */
export interface MicroBatcher<I, O> {
  submit(item: I): Promise<O>;
  /** Batches sent and items in them, for tests and the benchmark. */
  readonly stats: { batches: number; items: number; fallbacks: number };
}

export function makeMicroBatcher<I, O>(options: {
  run: (items: I[]) => Promise<O[]>;
  runOne: (item: I) => Promise<O>;
  maxBatch: number;
  /** Batches in flight at once (each holds a pooled connection). */
  maxInFlight: number;
}): MicroBatcher<I, O> {
  type Entry = { item: I; resolve: (value: O) => void; reject: (error: unknown) => void };
  let waiting: Entry[] = [];
  let inFlight = 0;
  let scheduled = false;
  const stats = { batches: 0, items: 0, fallbacks: 0 };

  function schedule() {
    if (scheduled) return;
    scheduled = true;
    setImmediate(flush);
  }

  function flush() {
    scheduled = false;
    while (waiting.length > 0 && inFlight < options.maxInFlight) {
      const batch = waiting.length <= options.maxBatch ? waiting : waiting.slice(0, options.maxBatch);
      waiting = waiting.length <= options.maxBatch ? [] : waiting.slice(options.maxBatch);
      inFlight++;
      void execute(batch).finally(() => {
        inFlight--;
        if (waiting.length > 0) schedule();
      });
    }
  }

  async function execute(batch: Entry[]) {
    stats.batches++;
    stats.items += batch.length;
    if (batch.length === 1) {
      const [entry] = batch as [Entry];
      await options.runOne(entry.item).then(entry.resolve, entry.reject);
      return;
    }
    let results: O[];
    try {
      results = await options.run(batch.map((e) => e.item));
    } catch {
      stats.fallbacks++;
      await Promise.all(batch.map((e) => options.runOne(e.item).then(e.resolve, e.reject)));
      return;
    }
    batch.forEach((e, i) => e.resolve(results[i]!));
  }

  return {
    stats,
    submit(item) {
      return new Promise<O>((resolve, reject) => {
        waiting.push({ item, resolve, reject });
        schedule();
      });
    },
  };
}
