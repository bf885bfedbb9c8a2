import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeHttp } from '../cluster/kube-http';

/**
 * The etcd space guard. Every rewrite stores the Secret's bytes again: until the API server compacts the old
 * revisions (`--etcd-compaction-interval`, 5 minutes by default), the database grows by what was rewritten,
 * and at etcd's `--quota-backend-bytes` it raises the NOSPACE alarm: the cluster turns read-only until an
 * operator compacts, defragments and disarms it (docs/runbook.md).
 *
 * kube-apiserver reports the database's size (`apiserver_storage_size_bytes`, STABLE, per storage cluster: the
 * etcd `Status` dbSize, the pages allocated, which is what etcd compares with its quota) but not the quota, so
 * the quota is a setting. The API server refreshes the figure only every `--etcd-db-metric-poll-interval` (30 s
 * by default), in which a sweep of Helm-sized Secrets writes gigabytes: so the guard projects the size from
 * the writes since the figure last changed, at the bytes per write it learned from the last change (a Helm
 * release's size, 128 KiB, until it has learned one). Once the projection is over `share` of the quota, the
 * sweep stops at an exact checkpoint, saves it, and waits until the API server has compacted past the
 * revision it stopped at (a list at that exact resourceVersion answers 410 then), or until a fresh figure
 * shows the projection was too high. Compaction frees the pages of the old revisions, and etcd reuses freed
 * pages before it grows the file: the writes made before the pause are credited, and the projection grows
 * again only past them.
 */

/** What the guard reads from the cluster. */
export interface ClusterSpace {
  /** The database's size in bytes, or undefined when the API server does not say (or /metrics is denied). */
  storageSizeBytes(): Promise<number | undefined>;
  /** The cluster's current revision: a fresh list's resourceVersion. */
  revision(): Promise<string>;
  /** Whether the API server has compacted etcd past `revision`. */
  compactedPast(revision: string): Promise<boolean>;
}

export interface EtcdSpaceOptions {
  /** etcd's `--quota-backend-bytes` (not readable through the API server: a setting). */
  quotaBytes: number;
  /** The share of the quota past which growth pauses the sweep (0–1). */
  share: number;
  /** How often the size is read while the sweep writes. */
  pollMs?: number;
  /** How long a pause waits for a compaction before the sweep stops with its checkpoint. */
  maxPauseMs?: number;
}

/** etcd's own default quota (2 GiB) and a fifth of it kept free for what is written between two readings. */
export const DEFAULT_ETCD_SPACE: Required<EtcdSpaceOptions> = {
  quotaBytes: 2 * 1024 ** 3,
  share: 0.8,
  // /metrics is a few MB for the API server to render: read it no more often than its figure could change.
  pollMs: 5_000,
  // Two compaction intervals at the API server's default, and a minute: the revision at the pause is
  // compacted by the second compaction after it.
  maxPauseMs: 11 * 60_000,
};

/** What the sweep's report says of etcd's space. */
export interface EtcdSpaceReport {
  quotaBytes: number;
  share: number;
  /** The size when the sweep started and the last one read (absent when the API server does not report it). */
  sizeAtStartBytes?: number;
  sizeBytes?: number;
  pauses: number;
  pausedMs: number;
  /** A pause that outlasted `maxPauseMs`: the sweep stopped with its checkpoint. */
  gaveUp?: boolean;
  /** Dry runs: the bytes the rewrites will add until the next compaction (the estimate's bytes to rewrite). */
  expectedGrowthBytes?: number;
}

/** The largest `apiserver_storage_size_bytes` over its storage clusters (Secrets may live in any of them). */
export function storageSizeFromMetrics(text: string): number | undefined {
  let size: number | undefined;
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_storage_size_bytes')) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) size = Math.max(size ?? 0, value);
  }
  return size;
}

/** What a write is assumed to add before the guard has seen one change of the figure: a Helm release's size. */
const ASSUMED_BYTES_PER_WRITE = 128 * 1024;
const MIN_BYTES_PER_WRITE = 1024;

const METADATA_LIST = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1';

/** The guard's view through the cluster's one HTTP client: `/metrics` and metadata lists of one Secret. */
export function kubeSpace(http: KubeHttp): ClusterSpace {
  return {
    async storageSizeBytes() {
      const { status, body } = await http.getRaw('/metrics');
      return status === 200 ? storageSizeFromMetrics(body) : undefined;
    },
    async revision() {
      const list = (await http.call('GET', '/api/v1/secrets?limit=1', METADATA_LIST)) as {
        metadata?: { resourceVersion?: string };
      };
      return list.metadata?.resourceVersion ?? '0';
    },
    async compactedPast(revision) {
      const query = new URLSearchParams({
        limit: '1',
        resourceVersion: revision,
        resourceVersionMatch: 'Exact',
      });
      try {
        await http.call('GET', `/api/v1/secrets?${query}`, METADATA_LIST, undefined, false);
        return false;
      } catch (err) {
        if ((err as { code?: unknown }).code === 410) return true;
        throw err;
      }
    },
  };
}

/**
 * Reads the figure every `pollMs` while started and counts the sweep's writes; `paused` turns true once the
 * projected size reaches the threshold, and stays true until `waitForCompaction` resumes.
 */
export class EtcdSpaceGuard {
  private readonly options: Required<EtcdSpaceOptions>;
  private timer?: NodeJS.Timeout;
  private reading?: Promise<void>;
  private pausedAt?: number;
  /** The figure as last read. */
  private size?: number;
  private writes = 0;
  private writesAtResume = 0;
  /** Writes since the figure changed that grow the file (not covered by the credit). */
  private growing = 0;
  /** Writes whose old revisions a compaction freed: etcd reuses their pages before it grows. */
  private credit = 0;
  private bytesPerWrite = ASSUMED_BYTES_PER_WRITE;
  paused = false;
  readonly state: EtcdSpaceReport;

  constructor(
    private readonly space: ClusterSpace,
    options: EtcdSpaceOptions,
    private readonly clock: () => number = Date.now,
    private readonly wait: (ms: number, signal?: AbortSignal) => Promise<unknown> = (ms, signal) =>
      sleep(ms, undefined, { signal }).catch(() => undefined),
  ) {
    if (!(options.quotaBytes > 0)) throw new RangeError('the etcd quota must be a positive number of bytes');
    if (!(options.share > 0 && options.share <= 1))
      throw new RangeError('the etcd quota share must be in (0, 1]');
    this.options = { ...DEFAULT_ETCD_SPACE, ...options };
    this.state = { quotaBytes: options.quotaBytes, share: options.share, pauses: 0, pausedMs: 0 };
  }

  get thresholdBytes(): number {
    return Math.floor(this.options.quotaBytes * this.options.share);
  }

  /** The first reading, then one every `pollMs` (a reading that fails leaves the last one standing). */
  async start(): Promise<void> {
    await this.read();
    if (this.size !== undefined) this.state.sizeAtStartBytes = this.size;
    this.timer = setInterval(() => {
      this.reading ??= this.read().finally(() => {
        this.reading = undefined;
      });
    }, this.options.pollMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.reading;
  }

  /** One written Secret (cheap: the sweep calls it for every write). */
  noteWrite(): void {
    this.writes++;
    // A credited write fills a freed page: only a growing one can take etcd over the threshold.
    if (this.credit > 0) this.credit--;
    else if (++this.growing && !this.paused && this.size !== undefined && this.overThreshold()) this.pause();
  }

  /** The figure, plus what the writes since it changed will have added (past the credited ones). */
  projectedBytes(): number {
    return (this.size ?? 0) + this.growing * this.bytesPerWrite;
  }

  /** One reading; a changed figure teaches the bytes per write; the guard pauses when the projection is over. */
  async read(): Promise<void> {
    let size: number | undefined;
    try {
      size = await this.space.storageSizeBytes();
    } catch {
      return;
    }
    if (size === undefined) return;
    this.state.sizeBytes = size;
    if (size !== this.size) {
      if (this.size !== undefined && this.growing > 0 && size > this.size)
        this.bytesPerWrite = Math.max(MIN_BYTES_PER_WRITE, (size - this.size) / this.growing);
      this.size = size;
      this.growing = 0;
    }
    if (!this.paused && this.growing > 0 && this.overThreshold()) this.pause();
  }

  private overThreshold(): boolean {
    return this.projectedBytes() >= this.thresholdBytes;
  }

  private pause(): void {
    this.paused = true;
    this.pausedAt = this.clock();
    this.state.pauses++;
  }

  /**
   * Once the sweep has stopped: waits until the API server compacted past the revision of now, then resumes.
   * False when the deadline, the signal or `maxPauseMs` came first (the sweep then returns its checkpoint).
   */
  async waitForCompaction(deadline?: number, signal?: AbortSignal): Promise<boolean> {
    const revision = await this.space.revision();
    const started = this.pausedAt ?? this.clock();
    const until = Math.min(deadline ?? Number.POSITIVE_INFINITY, started + this.options.maxPauseMs);
    const sizeAtPause = this.size;
    try {
      for (;;) {
        if (await this.space.compactedPast(revision).catch(() => false)) {
          await this.read();
          this.resumeAfterCompaction();
          return true;
        }
        await this.read();
        // A fresh figure under the threshold: the projection (a guess per write until learned) was too high.
        if (this.size !== sizeAtPause && this.projectedBytes() < this.thresholdBytes) {
          this.resume();
          return true;
        }
        if (signal?.aborted || this.clock() >= until) {
          if (this.clock() >= started + this.options.maxPauseMs) this.state.gaveUp = true;
          return false;
        }
        await this.wait(Math.min(this.options.pollMs, Math.max(0, until - this.clock())), signal);
      }
    } finally {
      this.state.pausedMs += this.clock() - started;
    }
  }

  /**
   * Every write since the last resume came before the pause: their old revisions are free pages now. And at
   * least half the room left below the quota: etcd over the threshold before the sweep began (free pages
   * unseen) still moves forward, by less each time the figure shows real growth.
   */
  private resumeAfterCompaction(): void {
    const room = this.options.quotaBytes - this.projectedBytes();
    this.credit += Math.max(this.writes - this.writesAtResume, Math.floor(room / 2 / this.bytesPerWrite));
    this.resume();
  }

  private resume(): void {
    this.paused = false;
    this.writesAtResume = this.writes;
  }
}
