/**
 * The scaling model on synthetic observations: actions, urgency, hysteresis, KEDA's rule, the arithmetic and bad
 * input.
 */
import { CAPABILITIES } from '../../../shared/capabilities';
import {
  DEFAULT_POLICY,
  kedaReplicas,
  policyFor,
  recommend,
  workerCapacity,
  type LoadObservation,
  type ScalingPolicy,
  type Urgency,
} from '../../../shared/metrics/recommendation';

const POLICY: ScalingPolicy = {
  minWorkers: 1,
  maxWorkers: 10,
  targetDrainSeconds: 60,
  scaleDownUtilization: 0.3,
  defaultServicePerWorkerPerMin: 30,
  kedaQueueLength: 5,
  kedaActivationQueueLength: 0,
};

const observe = (over: Partial<LoadObservation> = {}): LoadObservation => ({
  currentWorkers: 2,
  queueLength: 0,
  arrivalPerMin: 0,
  servicePerWorkerPerMin: 30,
  utilization: 0.5,
  samples: 50,
  oldestMessageAgeS: null,
  ...over,
});

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('recommend', () => {
  it('shrinks an idle capability to minWorkers', () => {
    const r = recommend(observe({ currentWorkers: 3, utilization: 0.02 }), POLICY);
    expect(r).toMatchObject({
      current_workers: 3,
      recommended_workers: 1,
      action: 'SCALE_DOWN',
      urgency: 'LOW',
      keda_replicas: 1,
    });
    expect(r.model).toEqual({
      service_per_worker_per_min: 30,
      required_for_arrivals: 0,
      required_for_backlog: 0,
      drain_time_s: 0,
    });
    expect(r.reason).toBe(
      'utilization 2% is below 30% and the queue is empty with 3 workers at 30.0 tasks/min each against 0.0 arrivals/min; shrink to 1 worker',
    );
    expect(recommend(observe({ currentWorkers: 3, utilization: 0.02 }), DEFAULT_POLICY)).toMatchObject({
      recommended_workers: 0,
      action: 'SCALE_DOWN',
      keda_replicas: 0,
    });
  });

  // 2 workers at 30/min against 30 arrivals/min gain 30 tasks/min on the backlog, so it drains in 2·Q seconds (T = 60).
  it.each<[queue: number, arrivals: number, drain: number | null, urgency: Urgency, recommended: number]>([
    [0, 90, 0, 'LOW', 3], // no backlog yet, but arrivals outpace the workers: one is forming
    [31, 30, 62, 'LOW', 3],
    [40, 30, 80, 'LOW', 3],
    [60, 30, 120, 'LOW', 3],
    [80, 30, 160, 'MEDIUM', 4],
    [90, 30, 180, 'MEDIUM', 4],
    [91, 30, 182, 'HIGH', 5],
    [200, 30, 400, 'HIGH', 8],
    [10, 70, null, 'HIGH', 3], // arrivals above capacity: the backlog never drains
  ])(
    'scales up for a backlog of %i at %i arrivals/min (drain %p s) with urgency %s, to %i workers',
    (queue, arrivals, drain, urgency, recommended) => {
      const r = recommend(
        observe({
          queueLength: queue,
          arrivalPerMin: arrivals,
          utilization: 0.95,
          oldestMessageAgeS: queue ? 20 : null,
        }),
        POLICY,
      );
      expect(r).toMatchObject({ action: 'SCALE_UP', urgency, recommended_workers: recommended });
      expect(r.model.drain_time_s).toBe(drain);
    },
  );

  it('keeps a capability at capacity as it is', () => {
    const r = recommend(
      observe({ currentWorkers: 4, arrivalPerMin: 115, queueLength: 2, utilization: 0.95, oldestMessageAgeS: 3 }),
      POLICY,
    );
    expect(r).toMatchObject({
      action: 'MAINTAIN',
      recommended_workers: 4,
      urgency: 'LOW',
      model: { drain_time_s: 24 },
    });
    expect(r.reason).toBe(
      'keeping 4 workers at 30.0 tasks/min each against 115.0 arrivals/min; the backlog of 2 (oldest 3 s) drains in 24 s',
    );
    // λ/μ = 3.0000000000000004 in floating point: exactly three workers' worth, not four.
    const exact = recommend(
      observe({ currentWorkers: 3, arrivalPerMin: 0.1 + 0.2, servicePerWorkerPerMin: 0.1, utilization: 1 }),
      POLICY,
    );
    expect(exact).toMatchObject({ action: 'MAINTAIN', recommended_workers: 3, urgency: 'NONE' });
  });

  it('scales up with HIGH urgency when a backlog has no workers at all', () => {
    const r = recommend(
      observe({
        currentWorkers: 0,
        queueLength: 12,
        arrivalPerMin: 19,
        servicePerWorkerPerMin: null,
        samples: 0,
        utilization: 0,
        oldestMessageAgeS: 30,
      }),
      DEFAULT_POLICY,
    );
    expect(r).toMatchObject({
      action: 'SCALE_UP',
      urgency: 'HIGH',
      recommended_workers: 2,
      keda_replicas: 3,
      model: { drain_time_s: null },
    });
    expect(r.reason).toMatch(/^backlog of 12 \(oldest 30 s\) would take forever to drain with 0 workers/);
    // However fast one worker is, a backlog needs at least one.
    expect(
      recommend(
        observe({ currentWorkers: 0, queueLength: 1, servicePerWorkerPerMin: 1e9, utilization: 0 }),
        DEFAULT_POLICY,
      ),
    ).toMatchObject({ action: 'SCALE_UP', urgency: 'HIGH', recommended_workers: 1 });
  });

  it('never recommends more than maxWorkers, and says so', () => {
    const flood = { queueLength: 5000, arrivalPerMin: 100, utilization: 1, oldestMessageAgeS: 600 };
    const up = recommend(observe({ ...flood, currentWorkers: 4 }), POLICY);
    expect(up).toMatchObject({ action: 'SCALE_UP', recommended_workers: 10, urgency: 'HIGH' });
    expect(up.reason).toMatch(/with 10 workers \(maxWorkers\) it takes 1500 s$/);
    const capped = recommend(observe({ ...flood, currentWorkers: 10 }), POLICY);
    expect(capped).toMatchObject({
      action: 'MAINTAIN',
      recommended_workers: 10,
      urgency: 'HIGH',
      model: { drain_time_s: 1500 },
    });
    expect(capped.reason).toMatch(/^capped at maxWorkers 10: /);
    const over = recommend(observe({ currentWorkers: 12, arrivalPerMin: 240, utilization: 0.9 }), POLICY);
    expect(over).toMatchObject({ action: 'SCALE_DOWN', recommended_workers: 8 });
    expect(over.reason).toMatch(/^maxWorkers is 10 /);
  });

  it('grows confidence with samples and caps it when the service rate is the default guess', () => {
    const confidence = (samples: number, servicePerWorkerPerMin: number | null) =>
      recommend(observe({ samples, servicePerWorkerPerMin }), POLICY).confidence;
    expect([0, 10, 50, 100].map((n) => confidence(n, 30))).toEqual([0, 0.5, 0.83, 0.91]);
    expect(confidence(50, null)).toBe(0.3);
    expect(confidence(0, null)).toBe(0);
    expect(recommend(observe({ servicePerWorkerPerMin: null }), POLICY).model.service_per_worker_per_min).toBe(30);
  });

  it('matches a hand calculation of the model', () => {
    // μ = 20, λ = 20, Q = 45, T = 60: λ/μ = 1; Q/(μ·T/60) = 45/20 = 2.25; ceil(3.25) = 4.
    // Drain with 2 workers: 45 / (2·20 − 20) × 60 = 135 s (within 3T: MEDIUM); with 4: 45 / (80 − 20) × 60 = 45 s.
    const r = recommend(
      observe({
        servicePerWorkerPerMin: 20,
        arrivalPerMin: 20,
        queueLength: 45,
        utilization: 0.9,
        oldestMessageAgeS: 40,
      }),
      POLICY,
    );
    expect(r.model).toEqual({
      service_per_worker_per_min: 20,
      required_for_arrivals: 1,
      required_for_backlog: 2.25,
      drain_time_s: 135,
    });
    expect(r).toMatchObject({
      current_workers: 2,
      recommended_workers: 4,
      action: 'SCALE_UP',
      urgency: 'MEDIUM',
      keda_replicas: 9,
      confidence: 0.83,
    });
    expect(r.reason).toBe(
      'backlog of 45 (oldest 40 s) would take 135 s to drain with 2 workers at 20.0 tasks/min each against 20.0 arrivals/min; with 4 workers it drains within 60 s',
    );
  });

  it('does not scale down while workers are busy or a backlog is still draining (hysteresis)', () => {
    const light = observe({ currentWorkers: 3, arrivalPerMin: 20 }); // the formula needs 1
    const busy = recommend({ ...light, utilization: 0.31 }, POLICY);
    expect(busy).toMatchObject({ action: 'MAINTAIN', recommended_workers: 3, urgency: 'NONE' });
    expect(busy.reason).toBe(
      'the formula needs 1 worker, but utilization 31% is not below 30%; keeping 3 workers to avoid flapping',
    );
    expect(recommend({ ...light, utilization: 0.29 }, POLICY)).toMatchObject({
      action: 'SCALE_DOWN',
      recommended_workers: 1,
    });
    // 40 queued drain in 34 s, over T/2 = 30 s: keep the workers; 20 queued drain in 17 s: shrink to the formula's 2.
    const draining = recommend({ ...light, utilization: 0.1, queueLength: 40 }, POLICY);
    expect(draining).toMatchObject({ action: 'MAINTAIN', recommended_workers: 3, urgency: 'LOW' });
    expect(draining.reason).toMatch(/takes 34 s to drain, over half the 60 s target/);
    expect(recommend({ ...light, utilization: 0.1, queueLength: 20 }, POLICY)).toMatchObject({
      action: 'SCALE_DOWN',
      recommended_workers: 2,
    });
  });

  it.each<[field: string, value: number, over: Partial<LoadObservation>, policy: Partial<ScalingPolicy>]>([
    ['observation.currentWorkers', -1, { currentWorkers: -1 }, {}],
    ['observation.currentWorkers', 1.5, { currentWorkers: 1.5 }, {}],
    ['observation.queueLength', NaN, { queueLength: NaN }, {}],
    ['observation.arrivalPerMin', Infinity, { arrivalPerMin: Infinity }, {}],
    ['observation.servicePerWorkerPerMin', 0, { servicePerWorkerPerMin: 0 }, {}],
    ['observation.servicePerWorkerPerMin', -5, { servicePerWorkerPerMin: -5 }, {}],
    ['observation.utilization', 1.5, { utilization: 1.5 }, {}],
    ['observation.samples', -2, { samples: -2 }, {}],
    ['observation.oldestMessageAgeS', -3, { oldestMessageAgeS: -3 }, {}],
    ['policy.maxWorkers', 0, {}, { minWorkers: 0, maxWorkers: 0 }],
    ['policy.maxWorkers', 3, {}, { minWorkers: 5, maxWorkers: 3 }],
    ['policy.targetDrainSeconds', 0, {}, { targetDrainSeconds: 0 }],
    ['policy.scaleDownUtilization', NaN, {}, { scaleDownUtilization: NaN }],
    ['policy.kedaQueueLength', -1, {}, { kedaQueueLength: -1 }],
  ])('refuses %s = %p with a RangeError naming it', (field, value, over, policy) => {
    const run = () => recommend(observe(over), { ...POLICY, ...policy });
    expect(run).toThrow(RangeError);
    expect(run).toThrow(new RegExp(`for ${escape(field)} but received ${escape(String(value))} of type number`));
  });

  it('never turns valid input into NaN, and keeps the action and the count consistent', () => {
    for (const currentWorkers of [0, 1, 3, 12])
      for (const queueLength of [0, 1, 50, 5000])
        for (const arrivalPerMin of [0, 0.5, 40, 1000])
          for (const servicePerWorkerPerMin of [null, 0.1, 30, 18000])
            for (const utilization of [0, 0.29, 0.31, 1]) {
              const r = recommend(
                {
                  currentWorkers,
                  queueLength,
                  arrivalPerMin,
                  servicePerWorkerPerMin,
                  utilization,
                  samples: 5,
                  oldestMessageAgeS: queueLength ? 10 : null,
                },
                POLICY,
              );
              const figures = [
                r.recommended_workers,
                r.confidence,
                r.keda_replicas,
                r.model.service_per_worker_per_min,
                r.model.required_for_arrivals,
                r.model.required_for_backlog,
                r.model.drain_time_s ?? 0,
              ];
              expect(figures.every(Number.isFinite)).toBe(true);
              expect(r.reason).not.toMatch(/NaN|undefined|Infinity/);
              const sign = { SCALE_UP: 1, SCALE_DOWN: -1, MAINTAIN: 0 }[r.action];
              expect(Math.sign(r.recommended_workers - currentWorkers)).toBe(sign);
              if (r.action !== 'MAINTAIN') expect(r.recommended_workers).toBeGreaterThanOrEqual(POLICY.minWorkers);
              if (r.action !== 'MAINTAIN') expect(r.recommended_workers).toBeLessThanOrEqual(POLICY.maxWorkers);
            }
  });
});

describe('kedaReplicas', () => {
  it.each<[policy: Partial<ScalingPolicy>, queue: number, replicas: number]>([
    [{}, 0, 0], // at the activation threshold with minReplicas 0: scaled to zero
    [{}, 1, 1],
    [{}, 5, 1],
    [{}, 6, 2],
    [{}, 49, 10],
    [{}, 51, 10], // ceil(51 / 5) = 11, clamped to maxWorkers
    [{ kedaActivationQueueLength: 3 }, 3, 0],
    [{ kedaActivationQueueLength: 3 }, 4, 1],
    [{ minWorkers: 2 }, 0, 2], // never below minReplicas, active or not
    [{ minWorkers: 2 }, 6, 2],
    [{ minWorkers: 2 }, 11, 3],
  ])('with %p and %i queued chooses %i replicas', (policy, queue, replicas) => {
    expect(kedaReplicas(queue, { ...DEFAULT_POLICY, ...policy })).toBe(replicas);
  });

  it('is what recommend reports, and refuses a bad queue length', () => {
    expect(recommend(observe({ queueLength: 23 }), DEFAULT_POLICY).keda_replicas).toBe(
      kedaReplicas(23, DEFAULT_POLICY),
    );
    expect(() => kedaReplicas(-1, DEFAULT_POLICY)).toThrow(RangeError);
    expect(() => kedaReplicas(2.5, DEFAULT_POLICY)).toThrow(/for queueLength but received 2\.5 of type number/);
  });
});

describe('the service rate before any task completed: measured per capability', () => {
  const [light, heavy] = CAPABILITIES;

  it("is the capability's measured capacity, or its WORKER_TASKS_PER_MIN entry", () => {
    expect(workerCapacity(light)).toBe(light.capacity.tasksPerMinPerWorker);
    expect(workerCapacity(heavy, 'light=900')).toBe(heavy.capacity.tasksPerMinPerWorker);
    expect(workerCapacity(light, 'light=900, heavy=120.5')).toBe(900);
    expect(workerCapacity(heavy, 'light=900, heavy=120.5')).toBe(120.5);
    // every capability has a measured figure, none is the old one-size guess of 30/min
    for (const c of CAPABILITIES) expect(c.capacity.tasksPerMinPerWorker).toBeGreaterThan(30);
  });

  it('sizes the first advice for a backlog from that rate, not from a constant', () => {
    const policy = policyFor(light.scaling, DEFAULT_POLICY, 1800);
    expect(policy.defaultServicePerWorkerPerMin).toBe(1800);
    // 3600 queued, no worker has completed anything yet: 2 workers at 1800/min clear it in 60 s
    const advice = recommend(
      observe({ currentWorkers: 0, queueLength: 3600, servicePerWorkerPerMin: null, samples: 0 }),
      policy,
    );
    expect(advice.model.service_per_worker_per_min).toBe(1800);
    expect(advice.recommended_workers).toBe(2);
    // with the old constant the same backlog asked for every replica there is
    expect(
      recommend(
        observe({ currentWorkers: 0, queueLength: 3600, servicePerWorkerPerMin: null, samples: 0 }),
        policyFor(light.scaling),
      ).recommended_workers,
    ).toBe(light.scaling.maxReplicas);
  });
});
