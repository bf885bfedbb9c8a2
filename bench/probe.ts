import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';

/**
 * The neighbour: a client that does what a controller does all day, at a fixed rate whatever the answers take
 * (an open loop, so a slow server cannot hide its slowness by slowing the probe down): every `intervalMs` it
 * sends, in turn, a GET of one ConfigMap and a LIST of at most 10 ConfigMaps. Each request's latency is kept
 * with its start time, so any window (idle, during a contender) can be read afterwards.
 */
export interface ProbeTarget {
  server: string;
  token: string;
  caFile: string;
  namespace: string;
  configMap: string;
}

export interface Percentiles {
  samples: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

export class Probe {
  private readonly agent: Agent;
  private readonly ca: Buffer;
  private readonly samples: Array<{ at: number; ms: number; ok: boolean }> = [];
  private timer?: NodeJS.Timeout;
  private turn = 0;

  constructor(
    private readonly target: ProbeTarget,
    private readonly intervalMs = 50,
  ) {
    this.ca = readFileSync(target.caFile);
    this.agent = new Agent({ ca: this.ca, keepAlive: true, maxSockets: 16 });
  }

  start(): void {
    this.timer = setInterval(() => this.fire(), this.intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.agent.destroy();
  }

  /** p50 and p99 of the requests started in [from, to] (performance.now() ms). */
  window(from: number, to: number): Percentiles {
    const inside = this.samples.filter((s) => s.at >= from && s.at <= to);
    const ms = inside
      .filter((s) => s.ok)
      .map((s) => s.ms)
      .sort((a, b) => a - b);
    const at = (q: number) => round(ms[Math.min(ms.length - 1, Math.ceil(q * ms.length) - 1)] ?? 0);
    return { samples: ms.length, p50Ms: at(0.5), p99Ms: at(0.99), errors: inside.length - ms.length };
  }

  private fire(): void {
    const { namespace, configMap } = this.target;
    const path =
      this.turn++ % 2
        ? `/api/v1/namespaces/${namespace}/configmaps?limit=10`
        : `/api/v1/namespaces/${namespace}/configmaps/${configMap}`;
    const url = new URL(path, this.target.server);
    const at = performance.now();
    const req = request(
      url,
      {
        agent: this.agent,
        headers: { authorization: `Bearer ${this.target.token}`, accept: 'application/json' },
      },
      (res) => {
        res.resume();
        res.on('end', () =>
          this.samples.push({ at, ms: performance.now() - at, ok: (res.statusCode ?? 0) < 300 }),
        );
      },
    );
    req.on('error', () => this.samples.push({ at, ms: performance.now() - at, ok: false }));
    req.end();
  }
}

const round = (ms: number) => Math.round(ms * 10) / 10;
