/**
 * Scaling advice for one capability from queueing arithmetic, with no I/O. The metrics timer feeds it one
 * observation per snapshot and stores the answer beside what KEDA's queue-length rule would choose (advice
 * only: KEDA does the scaling). Every intermediate figure is returned in `model`.
 *
 *   μ = tasks one busy worker completes per minute, as measured; before any task completed,
 *       policy.defaultServicePerWorkerPerMin (for a capability: its measured capacity, see workerCapacity)
 *   λ = tasks arriving per minute;  Q = messages queued;  T = policy.targetDrainSeconds
 *   required_for_arrivals = λ / μ              workers that keep pace with new work
 *   required_for_backlog  = Q / (μ · T / 60)   extra workers that clear the backlog within T
 *   recommended  = ceil(required_for_arrivals + required_for_backlog), clamped to [minWorkers, maxWorkers]
 *                  (so no load gives minWorkers)
 *   drain_time_s = 0 when Q = 0; Q / (current · μ − λ) × 60 when current · μ > λ; else null (never drains)
 *
 * Action, with hysteresis so the count does not flap around a ceil boundary between snapshots: SCALE_UP as soon
 * as recommended > current (a backlog costs latency now); SCALE_DOWN only when recommended < current AND
 * utilization < scaleDownUtilization (or current > maxWorkers) AND the queue is empty or drains within T / 2;
 * otherwise MAINTAIN, and the current count is reported as the recommendation.
 * Urgency is how late the backlog would drain with the current workers: NONE without a backlog, LOW within 2T,
 * MEDIUM within 3T, HIGH beyond, never, or with no workers. LOW reaches to 2T, not T, because a SCALE_UP for a
 * backlog already means a drain time over T. An empty queue with arrivals above capacity is LOW (a backlog is
 * forming); SCALE_DOWN is always LOW.
 * Confidence = n / (n + 10) for the n completed tasks behind μ (0.5 at 10, 0.91 at 100), capped at 0.3 when μ is
 * the policy's guess. oldestMessageAgeS is quoted in the reason, not used: Q and the rates already fix the drain.
 */
import { fieldProblem } from '../validation';
import type { Capability, CapabilityScaling } from '../capabilities';

export type ScalingAction = 'SCALE_UP' | 'SCALE_DOWN' | 'MAINTAIN';
export type Urgency = 'NONE' | 'LOW' | 'MEDIUM' | 'HIGH';

export interface LoadObservation {
  /** Live workers (processes) serving the capability now. */
  readonly currentWorkers: number;
  /** Messages waiting in the capability's queue (approximate). */
  readonly queueLength: number;
  /** Tasks arriving per minute over the observation window. */
  readonly arrivalPerMin: number;
  /** Tasks completed per minute per busy worker, measured over the window; null when nothing completed yet. */
  readonly servicePerWorkerPerMin: number | null;
  /** Share of worker slots busy over the window, 0..1. */
  readonly utilization: number;
  /** Completed tasks the service rate was measured on (drives confidence). */
  readonly samples: number;
  /** Age of the oldest queued message in seconds, null when the queue is empty. */
  readonly oldestMessageAgeS: number | null;
}

export interface ScalingPolicy {
  readonly minWorkers: number;
  readonly maxWorkers: number;
  readonly targetDrainSeconds: number; // the backlog should be gone within this
  readonly scaleDownUtilization: number; // below this utilization, with no backlog to speak of, shrink
  readonly defaultServicePerWorkerPerMin: number; // assumed service rate before any task completed
  readonly kedaQueueLength: number; // KEDA azure-queue trigger `queueLength`: target messages per replica
  readonly kedaActivationQueueLength: number; // KEDA `activationQueueLength`: at or below it, zero stays zero
}

/**
 * KEDA's defaults for the queue rule (minReplicaCount 0, queueLength 5, activationQueueLength 0); the rest are
 * starting guesses.
 */
export const DEFAULT_POLICY: ScalingPolicy = Object.freeze({
  minWorkers: 0,
  maxWorkers: 10,
  targetDrainSeconds: 60,
  scaleDownUtilization: 0.3,
  defaultServicePerWorkerPerMin: 30,
  kedaQueueLength: 5,
  kedaActivationQueueLength: 0,
});

/**
 * The policy for a capability: its scaling row (the same figures its KEDA ScaledObject uses) and, when given, the
 * service rate to assume before any task completed, over the defaults.
 */
export function policyFor(
  scaling: CapabilityScaling,
  base: ScalingPolicy = DEFAULT_POLICY,
  servicePerWorkerPerMin = base.defaultServicePerWorkerPerMin,
): ScalingPolicy {
  return Object.freeze({
    ...base,
    defaultServicePerWorkerPerMin: servicePerWorkerPerMin,
    minWorkers: scaling.minReplicas,
    maxWorkers: scaling.maxReplicas,
    kedaQueueLength: scaling.queueLength,
    kedaActivationQueueLength: scaling.activationQueueLength,
  });
}

/**
 * Tasks one busy worker of the capability completes per minute: its entry in `overrides` (WORKER_TASKS_PER_MIN,
 * `light=1800,heavy=1500`, already checked by the settings table), else the measured figure in its capability row.
 */
export function workerCapacity(capability: Pick<Capability, 'name' | 'capacity'>, overrides = ''): number {
  for (const entry of overrides.split(',')) {
    const [name, rate] = entry.trim().split('=');
    if (name === capability.name && Number(rate) > 0) return Number(rate);
  }
  return capability.capacity.tasksPerMinPerWorker;
}

export interface Recommendation {
  readonly current_workers: number;
  readonly recommended_workers: number;
  readonly action: ScalingAction;
  readonly reason: string;
  readonly confidence: number;
  readonly urgency: Urgency;
  readonly keda_replicas: number;
  /** The intermediate figures of the formula, so a reader can check the arithmetic. */
  readonly model: {
    readonly service_per_worker_per_min: number;
    readonly required_for_arrivals: number;
    readonly required_for_backlog: number;
    readonly drain_time_s: number | null;
  };
}

type Rule = readonly [expected: string, ok: (v: number) => boolean];
const COUNT: Rule = ['a non-negative integer', (v) => Number.isInteger(v) && v >= 0];
const AMOUNT: Rule = ['a non-negative number', (v) => v >= 0];
const RATE: Rule = ['a positive number', (v) => v > 0];
const SHARE: Rule = ['a number between 0 and 1', (v) => v >= 0 && v <= 1];

/** Bad figures throw here instead of turning into NaN advice; the message names the field and the value. */
function check(field: string, value: number | null, [expected, ok]: Rule, nullable = false): void {
  if (nullable && value === null) return;
  if (typeof value !== 'number' || !Number.isFinite(value) || !ok(value))
    throw new RangeError(fieldProblem(field, nullable ? `${expected} or null` : expected, value).message);
}

function checkPolicy(p: ScalingPolicy): void {
  for (const [field, rule] of [
    ['minWorkers', COUNT],
    ['targetDrainSeconds', RATE],
    ['scaleDownUtilization', SHARE],
    ['defaultServicePerWorkerPerMin', RATE],
    ['kedaQueueLength', RATE],
    ['kedaActivationQueueLength', AMOUNT],
  ] as const)
    check(`policy.${field}`, p[field], rule);
  const floor = Math.max(1, p.minWorkers);
  check('policy.maxWorkers', p.maxWorkers, [
    `an integer of at least ${floor} (1 and minWorkers)`,
    (v) => Number.isInteger(v) && v >= floor,
  ]);
}

function checkObservation(o: LoadObservation): void {
  for (const [field, rule] of [
    ['currentWorkers', COUNT],
    ['queueLength', COUNT],
    ['arrivalPerMin', AMOUNT],
    ['utilization', SHARE],
    ['samples', COUNT],
  ] as const)
    check(`observation.${field}`, o[field], rule);
  check('observation.servicePerWorkerPerMin', o.servicePerWorkerPerMin, RATE, true);
  check('observation.oldestMessageAgeS', o.oldestMessageAgeS, AMOUNT, true);
}

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
/** A figure rounded to `digits` decimals, as snapshots and advice report them. */
export const round = (v: number, digits: number): number => Math.round(v * 10 ** digits) / 10 ** digits;
const workers = (n: number) => `${n} worker${n === 1 ? '' : 's'}`;
const secs = (s: number | null) => (s === null ? 'forever' : `${Math.round(s)} s`);
const pct = (v: number) => `${Math.round(v * 100)}%`;

/**
 * What KEDA's azure-queue scaler + HPA would choose: 0 when queueLength <= activationQueueLength and minReplicas is
 * 0, else ceil(queueLength / kedaQueueLength), clamped to [min, max].
 */
export function kedaReplicas(queueLength: number, policy: ScalingPolicy): number {
  check('queueLength', queueLength, COUNT);
  checkPolicy(policy);
  if (queueLength <= policy.kedaActivationQueueLength && policy.minWorkers === 0) return 0;
  return clamp(Math.ceil(queueLength / policy.kedaQueueLength), policy.minWorkers, policy.maxWorkers);
}

/** Seconds for n workers to clear q while λ keeps arriving; null when they cannot gain on the arrivals. */
function drainSeconds(q: number, n: number, mu: number, lambda: number): number | null {
  if (q === 0) return 0;
  return n * mu > lambda ? (q / (n * mu - lambda)) * 60 : null;
}

function urgencyOf(action: ScalingAction, o: LoadObservation, mu: number, drain: number | null, t: number): Urgency {
  if (action === 'SCALE_DOWN') return 'LOW';
  if (o.queueLength === 0) return o.currentWorkers * mu < o.arrivalPerMin ? 'LOW' : 'NONE';
  if (drain === null || drain > 3 * t) return 'HIGH';
  return drain <= 2 * t ? 'LOW' : 'MEDIUM';
}

/** One sentence with the figures behind the action, worded to read right for 1 worker as for 10. */
function explain(
  action: ScalingAction,
  o: LoadObservation,
  p: ScalingPolicy,
  mu: number,
  needed: number,
  drain: number | null,
  idle: boolean,
): string {
  const { currentWorkers: n, queueLength: q, arrivalPerMin: lambda } = o;
  const rates = `${workers(n)} at ${mu.toFixed(1)} tasks/min each against ${lambda.toFixed(1)} arrivals/min`;
  const backlog = `backlog of ${q}${o.oldestMessageAgeS === null ? '' : ` (oldest ${Math.round(o.oldestMessageAgeS)} s)`}`;
  const target = `${workers(needed)}${needed === p.maxWorkers ? ' (maxWorkers)' : ''}`;
  const after = drainSeconds(q, needed, mu, lambda);
  const t = p.targetDrainSeconds;
  if (action === 'SCALE_UP' && q > 0) {
    return `${backlog} would take ${secs(drain)} to drain with ${rates}; with ${target} it ${after !== null && after <= t ? `drains within ${t} s` : `takes ${secs(after)}`}`;
  }
  if (action === 'SCALE_UP')
    return n * mu < lambda
      ? `arrivals outpace ${rates}; ${target} can serve ${(needed * mu).toFixed(1)}/min`
      : `minWorkers is ${p.minWorkers} and ${workers(n)} are running`;
  const utilization = `utilization ${pct(o.utilization)} is ${idle ? '' : 'not '}below ${pct(p.scaleDownUtilization)}`;
  if (action === 'SCALE_DOWN') {
    return `${n > p.maxWorkers ? `maxWorkers is ${p.maxWorkers}` : utilization} and the queue ${q === 0 ? 'is empty' : `drains in ${secs(drain)}`} with ${rates}; shrink to ${workers(needed)}`;
  }
  if (needed < n) {
    const busy = idle ? `the ${backlog} takes ${secs(drain)} to drain, over half the ${t} s target` : utilization;
    return `the formula needs ${workers(needed)}, but ${busy}; keeping ${workers(n)} to avoid flapping`;
  }
  if (q > 0 && (drain === null || drain > t))
    return `capped at maxWorkers ${p.maxWorkers}: the ${backlog} takes ${secs(drain)} to drain with ${rates}`;
  return `keeping ${rates}${q > 0 ? `; the ${backlog} drains in ${secs(drain)}` : ''}`;
}

export function recommend(o: LoadObservation, policy: ScalingPolicy = DEFAULT_POLICY): Recommendation {
  checkObservation(o);
  checkPolicy(policy);
  const { currentWorkers: n, queueLength: q, arrivalPerMin: lambda } = o;
  const t = policy.targetDrainSeconds;
  const mu = o.servicePerWorkerPerMin ?? policy.defaultServicePerWorkerPerMin;
  const forArrivals = lambda / mu;
  const forBacklog = q / ((mu * t) / 60);
  // The relative trim drops float noise (3.0000000004 → 3) without ever turning a positive load into 0 workers.
  const needed = clamp(Math.ceil((forArrivals + forBacklog) * (1 - 1e-9)), policy.minWorkers, policy.maxWorkers);
  const drain = drainSeconds(q, n, mu, lambda);
  const idle = o.utilization < policy.scaleDownUtilization || n > policy.maxWorkers;
  const settled = drain !== null && drain <= t / 2;
  const action: ScalingAction = needed > n ? 'SCALE_UP' : needed < n && idle && settled ? 'SCALE_DOWN' : 'MAINTAIN';
  return {
    current_workers: n,
    recommended_workers: action === 'MAINTAIN' ? n : needed,
    action,
    reason: explain(action, o, policy, mu, needed, drain, idle),
    confidence: round(Math.min(o.servicePerWorkerPerMin === null ? 0.3 : 1, o.samples / (o.samples + 10)), 2),
    urgency: urgencyOf(action, o, mu, drain, t),
    keda_replicas: kedaReplicas(q, policy),
    model: {
      service_per_worker_per_min: round(mu, 3),
      required_for_arrivals: round(forArrivals, 3),
      required_for_backlog: round(forBacklog, 3),
      drain_time_s: drain === null ? null : round(drain, 1),
    },
  };
}
