/*
 * The live dashboard. It polls the app's own API with relative URLs (any routePrefix or reverse
 * proxy works), keeps the last good data when a call fails and says so in a banner, and draws
 * with Chart.js when it loaded; every figure is also text, so the page reads without charts.
 * Plain browser JavaScript, no build step.
 */
(() => {
  'use strict';

  const REFRESH_MS = 3000;
  const HISTORY_MINUTES = 15;
  const REQUEST_TIMEOUT_MS = 10000;
  const RECENT_LIMIT = 12;
  const DEAD_LIMIT = 5;

  const ENDPOINTS = {
    metrics: './metrics',
    history: `./metrics/history?minutes=${HISTORY_MINUTES}`,
    workers: './workers',
    dead: './dead-letters',
  };

  // ---------- keys ----------
  // Every data route needs the function key; requeue needs the admin (master) key. The user types them into
  // the page's forms; they live in sessionStorage (this tab only, gone when it closes: never localStorage,
  // never a URL, never logged) and go to the API as the x-functions-key header. A host that checks no keys
  // (func start, LOCAL_HOST_AUTH=none) answers without one, and the page never asks.
  const FUNCTION_KEY = 'image-pipeline.function-key';
  const ADMIN_KEY = 'image-pipeline.admin-key';
  const keys = {
    get: (name) => {
      try {
        return sessionStorage.getItem(name) || null;
      } catch {
        return null;
      }
    },
    set: (name, value) => sessionStorage.setItem(name, value),
    forget: () => [FUNCTION_KEY, ADMIN_KEY].forEach((name) => sessionStorage.removeItem(name)),
  };
  const keyHeader = (key) => (key ? { 'x-functions-key': key } : {});
  let locked = false;

  const state = {
    metrics: null,
    history: null,
    workers: null,
    dead: null,
    deadError: null,
    updatedAt: null,
    serverOffsetMs: 0,
  };
  const capabilityViews = new Map();
  let hostChart = null;
  let timer = null;

  // ---------- helpers ----------

  /** A DOM element; text goes in as text nodes, never as HTML. */
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'text') node.textContent = String(value);
      else if (key === 'class') node.className = value;
      else node.setAttribute(key, String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  const byId = (id) => document.getElementById(id);
  const badge = (text, tone = '') => el('span', { class: `badge ${tone}`.trim(), text });
  const empty = (text) => el('p', { class: 'empty', text });
  const clip = (text, max) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);
  const num = (v, digits = 0) =>
    v === null || v === undefined || !Number.isFinite(v)
      ? '—'
      : v.toLocaleString(undefined, { maximumFractionDigits: digits });
  const pct = (v) => (v === null || v === undefined ? '—' : `${num(v * 100, v > 0.005 && v < 0.995 ? 1 : 0)}%`);
  const ms = (v) =>
    v === null || v === undefined ? '—' : v >= 1000 ? `${num(v / 1000, v >= 10000 ? 0 : 1)} s` : `${num(v)} ms`;
  const clock = (t) =>
    new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
  const taskUrl = (id, suffix = '') => `./tasks/${encodeURIComponent(id)}${suffix}`;
  const label = (code) => code.replace(/_/g, ' ');

  /** "12 s ago" on the server's clock (from the Date header), so a skewed browser clock does not mislead. */
  function ago(iso) {
    if (!iso) return '—';
    const s = Math.round((Date.now() + state.serverOffsetMs - Date.parse(iso)) / 1000);
    if (s < 2) return 'just now';
    if (s < 90) return `${s} s ago`;
    if (s < 5400) return `${Math.round(s / 60)} min ago`;
    return `${Math.round(s / 3600)} h ago`;
  }

  /** "6f013b21…_0003": the job's first block and the task's index. */
  function shortTaskId(id) {
    const m = /^([0-9a-f]{8})[0-9a-f-]*(_\d+)$/i.exec(id);
    return m ? `${m[1]}…${m[2]}` : id;
  }

  function cssVar(name, fallback) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
  }

  function withAlpha(hex, alpha) {
    const m = /^#([0-9a-f]{6})$/i.exec(hex);
    if (!m) return hex;
    const n = parseInt(m[1], 16);
    return `rgba(${n >> 16}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
  }

  // ---------- data ----------

  /** A failed call: which endpoint, what went wrong (the same reason for several endpoints is reported once). */
  class ApiError extends Error {
    constructor(endpoint, reason, status) {
      super(`${endpoint}: ${reason}`);
      this.endpoint = endpoint;
      this.reason = reason;
      this.status = status;
    }
  }

  async function getJson(path) {
    const name = path.split('?')[0].replace(/^\./, '');
    const controller = new AbortController();
    const timeout = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
    let res;
    try {
      res = await fetch(path, {
        headers: { accept: 'application/json', ...keyHeader(keys.get(FUNCTION_KEY)) },
        cache: 'no-store',
        signal: controller.signal,
      });
    } catch (err) {
      throw new ApiError(
        name,
        err.name === 'AbortError' ? `no answer in ${REQUEST_TIMEOUT_MS / 1000} s` : 'no connection',
        0,
      );
    } finally {
      clearTimeout(timeout);
    }
    const date = Date.parse(res.headers.get('date') ?? '');
    if (Number.isFinite(date)) state.serverOffsetMs = date - Date.now();
    const body = await res.json().catch(() => null);
    if (!res.ok)
      throw new ApiError(
        name,
        `answered ${res.status}${body?.detail || body?.title ? ` (${body.detail || body.title})` : ''}`,
        res.status,
      );
    if (body === null) throw new ApiError(name, 'answered something other than JSON', res.status);
    return body;
  }

  const snapshots = () => state.history?.snapshots ?? [];

  /** Tasks finished over the history: the latest window alone is a few seconds and mostly empty between bursts. */
  function historyTotals(name) {
    let completed = 0;
    let failed = 0;
    let lastLatency = null;
    for (const s of snapshots()) {
      const c = s.capabilities[name];
      if (!c) continue;
      completed += c.tasks.completed;
      failed += c.tasks.failed;
      if (c.tasks.latency_ms.p95 !== null) lastLatency = { ...c.tasks.latency_ms, at: s.timestamp };
    }
    return { completed, failed, lastLatency };
  }

  // ---------- charts ----------

  const TICK_STEPS_S = [2, 5, 10, 15, 30, 60, 120, 180, 300, 600];
  const MIN_SPAN_MS = 20000;

  /** The x axis: the data's span (at least 20 s) with a round tick step (see roundTicks). */
  function timeAxis(xs) {
    // Without data, the last 20 s on the server's clock, so the axis still reads as time.
    const max = xs.length ? xs[xs.length - 1] : Date.now() + state.serverOffsetMs;
    const min = Math.min(xs.length ? xs[0] : max, max - MIN_SPAN_MS);
    const stepS =
      TICK_STEPS_S.find((step) => (max - min) / (step * 1000) <= 6) ?? TICK_STEPS_S[TICK_STEPS_S.length - 1];
    return { min, max, stepSize: stepS * 1000, format: stepS < 60 ? clock : (v) => clock(v).slice(0, 5) };
  }

  /** Ticks on whole multiples of the step (Chart.js would spread them evenly between min and max instead). */
  function roundTicks(axis) {
    const step = axis.options.ticks.stepSize;
    if (!step) return;
    const ticks = [];
    for (let v = Math.ceil(axis.min / step) * step; v <= axis.max; v += step) ticks.push({ value: v });
    axis.ticks = ticks;
  }

  function setData(chart, series) {
    series.forEach((data, i) => (chart.data.datasets[i].data = data));
    const { min, max, stepSize, format } = timeAxis(series[0].map((p) => p.x));
    Object.assign(chart.options.scales.x, { min, max });
    Object.assign(chart.options.scales.x.ticks, { stepSize, callback: format });
    chart.update('none');
  }

  function lineChart(canvas, datasets, scales) {
    return new window.Chart(canvas, {
      type: 'line',
      data: { datasets },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        parsing: false,
        normalized: true,
        interaction: { mode: 'index', intersect: false },
        elements: {
          point: { radius: (ctx) => (ctx.dataset.data.length < 3 ? 3 : 0), hitRadius: 6 },
          line: { borderWidth: 2 },
        },
        scales: {
          x: {
            type: 'linear',
            grid: { display: false },
            afterBuildTicks: roundTicks,
            ticks: { maxRotation: 0, callback: (v) => clock(v) },
          },
          ...scales,
        },
        plugins: {
          legend: { position: 'bottom', labels: { boxWidth: 8, boxHeight: 8, usePointStyle: true } },
          tooltip: { callbacks: { title: (items) => (items.length ? clock(items[0].parsed.x) : '') } },
        },
      },
    });
  }

  function capabilityChart(canvas) {
    const queue = cssVar('--c-queue', '#2563eb');
    const active = cssVar('--c-active', '#16a34a');
    const busy = cssVar('--c-busy', '#ea580c');
    return lineChart(
      canvas,
      [
        {
          label: 'Queue length',
          yAxisID: 'y',
          data: [],
          borderColor: queue,
          backgroundColor: withAlpha(queue, 0.14),
          fill: 'origin',
          cubicInterpolationMode: 'monotone',
        },
        {
          label: 'Active workers',
          yAxisID: 'y1',
          data: [],
          borderColor: active,
          backgroundColor: active,
          stepped: true,
        },
        {
          label: 'Busy workers',
          yAxisID: 'y1',
          data: [],
          borderColor: busy,
          backgroundColor: busy,
          stepped: true,
          borderDash: [5, 4],
        },
      ],
      {
        y: { beginAtZero: true, suggestedMax: 4, ticks: { precision: 0 }, title: { display: true, text: 'messages' } },
        y1: {
          beginAtZero: true,
          suggestedMax: 2,
          position: 'right',
          ticks: { precision: 0 },
          grid: { drawOnChartArea: false },
          title: { display: true, text: 'workers' },
        },
      },
    );
  }

  // ---------- capability cards ----------

  function kpi(title) {
    const value = el('div', { class: 'kpi-value', text: '—' });
    const sub = el('div', { class: 'kpi-sub' });
    const node = el('div', { class: 'kpi' }, el('div', { class: 'kpi-label', text: title }), value, sub);
    return {
      node,
      set([text, unit = ''], subText, tone = '') {
        value.replaceChildren(text, unit ? el('span', { class: 'unit', text: unit }) : '');
        sub.textContent = subText;
        node.className = `kpi ${tone}`.trim();
      },
    };
  }

  function figure(title, extraClass = '') {
    const value = el('strong', { class: extraClass, text: '—' });
    return { node: el('div', { class: 'figure' }, el('span', { class: 'muted', text: title }), value), value };
  }

  function createCapabilityView(name) {
    const view = {
      name,
      chart: null,
      queueName: el('span', { class: 'muted' }),
      kpis: {
        queue: kpi('Queue'),
        workers: kpi('Workers'),
        throughput: kpi('Throughput'),
        latency: kpi('p95 latency'),
        success: kpi('Success'),
      },
      canvas: el('canvas', {
        role: 'img',
        'aria-label': `Queue length and workers of ${name} over the last ${HISTORY_MINUTES} minutes`,
        'data-points': '0',
      }),
      chartEmpty: el('p', {
        class: 'chart-empty',
        text: window.Chart
          ? 'Waiting for the first metrics snapshot…'
          : 'Charts are unavailable (Chart.js did not load); the figures are live.',
      }),
      rec: {
        action: el('span', { class: 'badge rec-action', text: '—' }),
        urgency: el('span', { class: 'badge', text: '—' }),
        current: figure('workers now'),
        ours: figure('we advise'),
        keda: figure('KEDA would run', 'keda-replicas'),
        confidenceFill: el('span', { class: 'bar-fill' }),
        confidence: el('strong'),
        reason: el('p', { class: 'reason' }),
        model: el('p', { class: 'model muted' }),
        // the instant of the snapshot the queue card and this advice both come from
        at: el('span', { class: 'rec-at muted' }),
      },
    };
    const { rec, kpis } = view;
    rec.keda.node.classList.add('keda');
    rec.keda.node.title = "What KEDA's azure-queue rule would choose: ceil(queue / queueLength), for comparison";
    rec.ours.node.classList.add('ours');
    view.card = el(
      'article',
      { class: 'card capability', 'data-capability': name },
      el('div', { class: 'card-head' }, el('h2', { class: 'cap-name', text: name }), view.queueName),
      el('div', { class: 'kpis' }, ...Object.values(kpis).map((k) => k.node)),
      el('div', { class: 'chart-box' }, view.canvas, view.chartEmpty),
      el(
        'section',
        { class: 'rec', 'aria-label': `Scaling advice for ${name}` },
        el(
          'div',
          { class: 'rec-head' },
          el('h3', { text: 'Scaling advice' }),
          rec.action,
          el('span', { class: 'muted', text: 'urgency' }),
          rec.urgency,
          rec.at,
        ),
        el(
          'div',
          { class: 'figures' },
          rec.current.node,
          el('span', { class: 'arrow', 'aria-hidden': 'true', text: '→' }),
          rec.ours.node,
          rec.keda.node,
          el(
            'div',
            { class: 'confidence' },
            el('div', { class: 'confidence-head' }, el('span', { class: 'muted', text: 'confidence' }), rec.confidence),
            el('span', { class: 'bar' }, rec.confidenceFill),
          ),
        ),
        rec.reason,
        rec.model,
      ),
    );
    return view;
  }

  const ACTION_TONE = { SCALE_UP: 'warn', SCALE_DOWN: 'info', MAINTAIN: 'ok' };
  const URGENCY_TONE = { NONE: 'quiet', LOW: 'ok', MEDIUM: 'warn', HIGH: 'bad' };

  function renderCapability(view, m) {
    const { timestamp, window_s: windowS } = state.metrics;
    const totals = historyTotals(view.name);
    const finished = totals.completed + totals.failed;
    const r = m.recommendation;
    view.queueName.textContent = `queue ${m.queue}`;

    const { kpis } = view;
    // The queue card shows the snapshot's queue, the one its advice was computed from, and says when; the queue read
    // now (live) is in the tooltip.
    const at = `at ${clock(timestamp)}`;
    const live = state.metrics.live?.capabilities?.[view.name];
    kpis.queue.set(
      [num(m.queue_length)],
      `${m.queue_length ? `oldest ${m.oldest_message_age_s ?? '—'} s` : 'empty'} · ${at}`,
      m.queue_length > 0 ? 'warn' : '',
    );
    kpis.queue.node.dataset.at = timestamp;
    kpis.queue.node.title = live
      ? `${num(live.queue_length)} waiting when read at ${clock(state.metrics.live.read_at)}`
      : `snapshot of ${clock(timestamp)}`;
    kpis.workers.set(
      [`${num(m.workers.busy)} / ${num(m.workers.active)}`],
      `busy / active, ${pct(m.workers.utilization)} utilized`,
      m.workers.active === 0 && m.queue_length > 0 ? 'bad' : '',
    );
    kpis.throughput.set(
      [num(m.tasks.throughput_per_min, m.tasks.throughput_per_min < 100 ? 1 : 0), '/min'],
      windowS ? `${num(totals.completed)} in ${HISTORY_MINUTES} min` : 'from the next snapshot on',
    );
    const latency = m.tasks.latency_ms.p95 !== null ? { ...m.tasks.latency_ms, at: timestamp } : totals.lastLatency;
    kpis.latency.set(
      latency ? ms(latency.p95).split(' ') : ['—'],
      latency
        ? `p50 ${ms(latency.p50)}${(latency.p99 ?? null) !== null ? ` · p99 ${ms(latency.p99)}` : ''} · ${latency.at === timestamp ? 'now' : ago(latency.at)}`
        : 'no task finished yet',
    );
    const rate = finished ? totals.completed / finished : m.tasks.success_rate;
    kpis.success.set(
      rate === null || rate === undefined ? ['—'] : [num(rate * 100, rate > 0.005 && rate < 0.995 ? 1 : 0), '%'],
      finished ? `${num(totals.failed)} of ${num(finished)} failed` : 'no task finished yet',
      rate === null ? '' : rate < 0.9 ? 'bad' : rate < 0.99 ? 'warn' : 'ok',
    );

    const { rec } = view;
    rec.action.textContent = label(r.action);
    rec.action.className = `badge rec-action ${ACTION_TONE[r.action] ?? ''}`;
    rec.urgency.textContent = r.urgency;
    rec.urgency.className = `badge ${URGENCY_TONE[r.urgency] ?? ''}`;
    rec.current.value.textContent = num(r.current_workers);
    rec.ours.value.textContent = num(r.recommended_workers);
    rec.keda.value.textContent = num(r.keda_replicas);
    rec.confidenceFill.style.width = `${Math.round(r.confidence * 100)}%`;
    rec.confidence.textContent = pct(r.confidence);
    rec.reason.textContent = r.reason;
    rec.at.textContent = at;
    rec.at.dataset.at = timestamp;
    const model = r.model;
    rec.model.textContent = `μ ${num(model.service_per_worker_per_min, 1)} tasks/min per worker · workers for arrivals ${num(model.required_for_arrivals, 2)} + backlog ${num(model.required_for_backlog, 2)} · drains in ${model.drain_time_s === null ? 'never' : `${num(model.drain_time_s)} s`}`;

    renderCapabilityChart(view);
  }

  function renderCapabilityChart(view) {
    const queue = [];
    const active = [];
    const busy = [];
    for (const s of snapshots()) {
      const c = s.capabilities[view.name];
      if (!c) continue;
      const x = Date.parse(s.timestamp);
      queue.push({ x, y: c.queue_length });
      active.push({ x, y: c.workers.active });
      busy.push({ x, y: c.workers.busy });
    }
    view.canvas.setAttribute('data-points', String(queue.length));
    if (!window.Chart) return;
    view.chartEmpty.hidden = queue.length > 0;
    view.chart ??= capabilityChart(view.canvas);
    setData(view.chart, [queue, active, busy]);
  }

  function renderCapabilities() {
    const section = byId('capabilities');
    const names = state.metrics ? Object.keys(state.metrics.capabilities) : [];
    if (!names.length) {
      section.replaceChildren(empty(state.metrics ? 'The metrics snapshot names no capability.' : 'Loading metrics…'));
      return;
    }
    for (const [name, view] of capabilityViews) {
      if (names.includes(name)) continue;
      view.chart?.destroy();
      capabilityViews.delete(name);
    }
    const cards = names.map((name) => {
      if (!capabilityViews.has(name)) capabilityViews.set(name, createCapabilityView(name));
      return capabilityViews.get(name).card;
    });
    if (cards.length !== section.children.length || cards.some((card, i) => section.children[i] !== card))
      section.replaceChildren(...cards);
    for (const name of names) renderCapability(capabilityViews.get(name), state.metrics.capabilities[name]);
  }

  // ---------- tables ----------

  function table(headers, rows) {
    return el(
      'div',
      { class: 'table-wrap' },
      el(
        'table',
        {},
        el(
          'thead',
          {},
          el('tr', {}, ...headers.map(([text, isNum]) => el('th', { class: isNum ? 'num' : null, text }))),
        ),
        el('tbody', {}, ...rows),
      ),
    );
  }

  const OUTCOME_TONE = {
    succeeded: 'ok',
    already_succeeded: 'ok',
    failed: 'bad',
    sent_to_poison: 'bad',
    error: 'warn',
  };
  const STATUS_TONE = { busy: 'warn', idle: 'ok', dead: 'bad', stopped: 'quiet' };
  const isLive = (w) => w.status === 'busy' || w.status === 'idle';

  function renderRecent() {
    if (!state.workers) return;
    const { workers } = state.workers;
    const tasks = workers
      .flatMap((w) => w.recent_tasks ?? [])
      .sort((a, b) => Date.parse(b.finished_at) - Date.parse(a.finished_at));
    byId('recent-note').textContent = tasks.length
      ? `newest first, as ${workers.length === 1 ? 'the worker reports' : `${workers.length} workers report`} them`
      : '';
    if (!tasks.length) {
      byId('recent').replaceChildren(
        empty(
          workers.length
            ? 'No task has finished yet: submit a job (POST ./jobs) and it shows up here.'
            : 'No worker has registered yet, so no task has run.',
        ),
      );
      return;
    }
    const rows = tasks.slice(0, RECENT_LIMIT).map((t) => {
      const done = t.task_id && (t.outcome === 'succeeded' || t.outcome === 'already_succeeded');
      return el(
        'tr',
        { class: 'task-row' },
        el('td', { title: t.finished_at, text: ago(t.finished_at) }),
        el(
          'td',
          {},
          t.task_id
            ? el('a', {
                href: taskUrl(t.task_id),
                class: 'mono task-record',
                title: `task record ${t.task_id}`,
                text: shortTaskId(t.task_id),
              })
            : el('span', { class: 'muted', text: 'unreadable message' }),
        ),
        el('td', {}, badge(t.capability, 'cap')),
        el('td', {}, badge(label(t.outcome), OUTCOME_TONE[t.outcome])),
        el('td', { class: 'num', text: ms(t.duration_ms) }),
        el(
          'td',
          {},
          done
            ? el('a', { href: taskUrl(t.task_id, '/result'), class: 'task-result', text: 'result' })
            : el('span', { class: 'muted', text: '—' }),
        ),
      );
    });
    byId('recent').replaceChildren(
      table([['finished'], ['task'], ['capability'], ['outcome'], ['took', true], ['image']], rows),
    );
  }

  function renderWorkers() {
    if (!state.workers) return;
    const workers = [...state.workers.workers].sort(
      (a, b) => Number(isLive(b)) - Number(isLive(a)) || a.id.localeCompare(b.id),
    );
    byId('workers-note').textContent = workers.length
      ? `${workers.filter(isLive).length} live of ${workers.length} registered`
      : '';
    if (!workers.length) {
      byId('workers').replaceChildren(
        empty(
          'No worker has registered yet. Workers register when the Functions app starts and heartbeat every few seconds.',
        ),
      );
      return;
    }
    const rows = workers.map((w) =>
      el(
        'tr',
        {},
        el('td', { class: 'mono', text: w.id }),
        el('td', {}, ...w.capabilities.map((c) => badge(c, 'cap'))),
        el('td', {}, badge(w.status, STATUS_TONE[w.status])),
        el('td', { class: 'num', text: num(w.in_flight) }),
        el('td', { class: 'num', text: num(w.processed) }),
        el('td', { class: w.failed ? 'num bad-text' : 'num', text: num(w.failed) }),
        el('td', { title: w.last_heartbeat, text: ago(w.last_heartbeat) }),
      ),
    );
    byId('workers').replaceChildren(
      table(
        [
          ['worker'],
          ['capabilities'],
          ['status'],
          ['in flight', true],
          ['processed', true],
          ['failed', true],
          ['last heartbeat'],
        ],
        rows,
      ),
    );
  }

  /** Letters whose message is shown: the list is redrawn on every refresh, and an open body stays open. */
  const openBodies = new Set();

  /** The message as it was enqueued, collapsed (JSON indented when it parses). */
  function letterBody(d) {
    const key = `${d.capability}/${d.id}`;
    let text = d.message;
    try {
      text = JSON.stringify(JSON.parse(d.message), null, 2);
    } catch {
      // not JSON: shown as it is
    }
    const details = el(
      'details',
      { class: 'dead-body', open: openBodies.has(key) },
      el('summary', { text: 'message' }),
      el('pre', { class: 'mono', text }),
    );
    details.addEventListener('toggle', () => (details.open ? openBodies.add(key) : openBodies.delete(key)));
    return details;
  }

  function renderDead() {
    const box = deadBody;
    if (!state.dead) {
      if (state.deadError) box.replaceChildren(empty(`Not available: ${state.deadError.message}`));
      return;
    }
    const caps = state.dead.capabilities;
    const counts = el(
      'div',
      { class: 'dead-counts' },
      ...caps.map((c) =>
        el(
          'div',
          { class: c.count + c.waiting_in_poison_queue > 0 ? 'kpi bad' : 'kpi', 'data-capability': c.capability },
          el('div', { class: 'kpi-label', text: c.capability }),
          el('div', { class: 'kpi-value', text: num(c.count) }),
          el('div', {
            class: 'kpi-sub',
            text: c.waiting_in_poison_queue
              ? `${c.waiting_in_poison_queue} waiting in ${c.poison_queue}`
              : 'poison queue empty',
          }),
        ),
      ),
    );
    // Messages still in a poison queue (not yet recorded, or not base64 and never recordable) are
    // listed with the dead letters, so nothing that ran out of retries is invisible.
    const waiting = caps.flatMap((c) =>
      (c.poison_messages ?? []).map((m) => ({
        capability: c.capability,
        task_id: null,
        reason: m.encoding === 'not_base64' ? `not base64, in ${c.poison_queue}` : `waiting in ${c.poison_queue}`,
        error: m.text,
        failed_at: m.inserted_at,
        poison: true,
      })),
    );
    const letters = [...caps.flatMap((c) => c.dead_letters), ...waiting].sort(
      (a, b) => (Date.parse(b.failed_at) || 0) - (Date.parse(a.failed_at) || 0),
    );
    const list = letters.length
      ? el(
          'ul',
          { class: 'dead-list' },
          ...letters.slice(0, DEAD_LIMIT).map((d) =>
            el(
              'li',
              {},
              el(
                'div',
                { class: 'dead-meta' },
                badge(d.capability, 'cap'),
                d.task_id
                  ? el('a', {
                      href: taskUrl(d.task_id),
                      class: 'mono task-record',
                      title: d.task_id,
                      text: shortTaskId(d.task_id),
                    })
                  : el('span', { class: 'muted', text: 'no task id' }),
                d.failed_at ? el('span', { class: 'muted', title: d.failed_at, text: ago(d.failed_at) }) : null,
              ),
              el('div', { class: 'reason', title: d.reason, text: d.reason }),
              d.error ? el('div', { class: 'dead-error mono', title: d.error, text: clip(d.error, 160) }) : null,
              d.message ? letterBody(d) : null,
              d.poison || !d.id
                ? null
                : el('button', {
                    class: 'button quiet requeue-one',
                    type: 'button',
                    'data-capability': d.capability,
                    'data-id': d.id,
                    text: 'Requeue',
                  }),
            ),
          ),
        )
      : empty('None: no message has run out of retries.');
    const requeueable = caps.filter((c) => c.count + c.waiting_in_poison_queue > 0);
    const actions = requeueable.length
      ? el(
          'div',
          { class: 'dead-actions' },
          ...requeueable.map((c) =>
            el('button', {
              class: 'button quiet requeue',
              type: 'button',
              'data-capability': c.capability,
              text: `Requeue ${c.capability}`,
            }),
          ),
        )
      : null;
    box.replaceChildren(counts, list, ...(actions ? [actions] : []));
  }

  // ---------- actions that change things (confirmed; the admin key when the app asks for it) ----------

  /**
   * Where an action says what happened, or asks for the admin key, sits beside the list it acts on (which is
   * redrawn on every refresh), so a key being typed keeps its focus. One key form at a time.
   */
  const deadBody = el('div', {}, empty('Loading…'));
  const adminBox = el('div', { id: 'admin', class: 'admin-form' });
  byId('dead').replaceChildren(deadBody, adminBox);
  const jobActionBox = byId('job-action');
  const actionBoxes = [adminBox, jobActionBox];

  const lowerFirst = (text) => text.charAt(0).toLowerCase() + text.slice(1);

  /** The admin (master) key form for `action`, in its box; submitting it runs the action with that key. */
  function adminForm(action, message) {
    const input = el('input', {
      id: 'admin-key-input',
      type: 'password',
      autocomplete: 'off',
      spellcheck: 'false',
      'aria-label': 'Admin (master) key',
      required: true,
    });
    const form = el(
      'form',
      { id: 'admin-key-form', class: 'admin-form' },
      el('p', { class: 'key-message', role: 'alert', text: message }),
      el(
        'div',
        { class: 'key-row' },
        input,
        el('button', { class: 'button', type: 'submit', text: action.verb }),
        el('button', { class: 'button quiet', type: 'button', 'data-cancel': '', text: 'Cancel' }),
      ),
      el('p', { class: 'muted small', text: 'Kept in this tab only (session storage), apart from the function key.' }),
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      keys.set(ADMIN_KEY, input.value.trim());
      input.value = '';
      void perform(action);
    });
    form.querySelector('[data-cancel]').addEventListener('click', () => action.box.replaceChildren());
    for (const box of actionBoxes) if (box !== action.box) box.replaceChildren();
    action.box.replaceChildren(form);
    input.focus();
  }

  /**
   * Runs an action after the user confirms it. `action`: { label ("Requeue light"), verb (the form's button),
   * confirm (the question), method, path, box, done(body) → text, after() }. The admin key goes only to these
   * calls, never to a read; without one the function key goes, and a 401 asks for the admin key.
   */
  function act(action) {
    if (!window.confirm(action.confirm)) return;
    void perform(action);
  }

  async function perform(action) {
    const key = keys.get(ADMIN_KEY) ?? keys.get(FUNCTION_KEY);
    action.box.replaceChildren(el('p', { class: 'muted', text: `${action.label}…` }));
    let res;
    try {
      res = await fetch(action.path, {
        method: action.method,
        headers: { accept: 'application/json', ...keyHeader(key) },
        cache: 'no-store',
      });
    } catch {
      action.box.replaceChildren(el('p', { class: 'key-message', text: `${action.label} failed: no connection.` }));
      return;
    }
    if (res.status === 401) {
      const refused = keys.get(ADMIN_KEY);
      sessionStorage.removeItem(ADMIN_KEY);
      adminForm(
        action,
        refused
          ? `That key was refused: ${lowerFirst(action.label)} needs the admin (master) key.`
          : `${action.label} needs the admin (master) key.`,
      );
      return;
    }
    const body = await res.json().catch(() => null);
    action.box.replaceChildren(
      el('p', {
        class: res.ok ? 'muted action-done' : 'key-message',
        text: res.ok ? action.done(body) : `${action.label}: ${body?.detail ?? `answered ${res.status}`}`,
      }),
    );
    action.after?.(res.ok);
    poll();
  }

  const requeueCapability = (capability) =>
    act({
      label: `Requeue ${capability}`,
      verb: 'Requeue',
      confirm: `Put every dead letter of ${capability} back on its queue?`,
      method: 'POST',
      path: `./dead-letters/${encodeURIComponent(capability)}/requeue`,
      box: adminBox,
      done: (body) => `${capability}: requeued ${body?.requeued ?? 0} message(s)`,
    });

  const requeueLetter = (capability, id) =>
    act({
      label: `Requeue dead letter ${id}`,
      verb: 'Requeue',
      confirm: `Put dead letter ${id} (${capability}) back on its queue?`,
      method: 'POST',
      path: `./dead-letters/${encodeURIComponent(capability)}/${encodeURIComponent(id)}/requeue`,
      box: adminBox,
      done: () => `${capability}: requeued dead letter ${id}`,
    });

  const retryJob = (jobId) =>
    act({
      label: `Retry job ${jobId.slice(0, 8)}`,
      verb: 'Retry',
      confirm: `Run the failed tasks of job ${jobId} again?`,
      method: 'POST',
      path: `./jobs/${encodeURIComponent(jobId)}/retry`,
      box: jobActionBox,
      done: (body) => `Job ${jobId.slice(0, 8)}: ${body?.requeued?.length ?? 0} failed task(s) back to work`,
    });

  const deleteJob = (jobId) =>
    act({
      label: `Delete job ${jobId.slice(0, 8)}`,
      verb: 'Delete',
      confirm: `Delete job ${jobId} with its task records and results? This cannot be undone.`,
      method: 'DELETE',
      path: `./jobs/${encodeURIComponent(jobId)}`,
      box: jobActionBox,
      done: () => `Job ${jobId.slice(0, 8)} deleted`,
      after: (ok) => {
        if (ok && jobs.open === jobId) closeJob();
      },
    });

  // ---------- jobs ----------

  const JOBS_LIMIT = 10;
  const JOB_TONE = { succeeded: 'ok', failed: 'bad', partially_failed: 'warn', processing: 'info', queued: 'quiet' };
  const TASK_TONE = { succeeded: 'ok', failed: 'bad', processing: 'info', queued: 'quiet' };
  /** The page of the jobs table (continuation tokens of the pages seen: Prev walks back), and the open job. */
  const jobs = { status: '', tokens: [null], page: 0, list: null, listError: null, open: null, detail: null };

  function jobsPath() {
    const q = new URLSearchParams({ limit: String(JOBS_LIMIT) });
    if (jobs.status) q.set('status', jobs.status);
    const token = jobs.tokens[jobs.page];
    if (token) q.set('continuation', token);
    return `./jobs?${q}`;
  }

  /** The jobs page and the open job, read again (with every refresh, and after a filter or page change). */
  async function loadJobs() {
    const path = jobsPath();
    try {
      const list = await getJson(path);
      if (path !== jobsPath()) return; // the filter or page changed meanwhile: that load draws
      jobs.list = list;
      jobs.listError = null;
    } catch (err) {
      jobs.listError = err;
    }
    if (jobs.open) {
      const id = jobs.open;
      try {
        const detail = await getJson(`./jobs/${encodeURIComponent(id)}`);
        if (jobs.open === id) jobs.detail = detail;
      } catch (err) {
        if (jobs.open === id) jobs.detail = { error: err };
      }
    }
    renderJobs();
  }

  const shortJobId = (id) => `${id.slice(0, 8)}…`;

  function renderJobs() {
    const box = byId('jobs');
    byId('jobs-page').textContent = `page ${jobs.page + 1}`;
    byId('jobs-prev').disabled = jobs.page === 0;
    byId('jobs-next').disabled = !jobs.list?.continuation;
    if (jobs.listError && !jobs.list) box.replaceChildren(empty(`Not available: ${jobs.listError.message}`));
    else if (jobs.list) {
      const rows = jobs.list.jobs.map((j) =>
        el(
          'tr',
          { class: j.job_id === jobs.open ? 'job-row open' : 'job-row', 'data-job': j.job_id },
          el(
            'td',
            {},
            el('button', {
              class: 'link mono open-job',
              type: 'button',
              'data-job': j.job_id,
              title: j.job_id,
              text: shortJobId(j.job_id),
            }),
          ),
          el('td', { title: j.created_at, text: ago(j.created_at) }),
          el('td', {}, badge(label(j.status), JOB_TONE[j.status])),
          el('td', { class: 'num', text: num(j.total) }),
          el('td', { class: 'num', text: num(j.counts.succeeded) }),
          el('td', { class: j.counts.failed ? 'num bad-text' : 'num', text: num(j.counts.failed) }),
          el('td', { class: 'mono', text: clip(j.filters.join(', '), 40) }),
          el('td', { text: j.output_format }),
        ),
      );
      box.replaceChildren(
        rows.length
          ? table(
              [
                ['job'],
                ['created'],
                ['status'],
                ['tasks', true],
                ['succeeded', true],
                ['failed', true],
                ['filters'],
                ['output'],
              ],
              rows,
            )
          : empty(jobs.status ? `No ${label(jobs.status)} job on this page.` : 'No job yet.'),
      );
    }
    renderJobDetail();
  }

  function taskRows(tasks, failedView) {
    return tasks.map((t) =>
      el(
        'tr',
        { 'data-task': t.task_id },
        el(
          'td',
          {},
          el('a', {
            href: taskUrl(t.task_id),
            class: 'mono task-record',
            title: t.task_id,
            text: shortTaskId(t.task_id),
          }),
        ),
        el('td', { class: 'mono', title: t.image, text: clip(t.image, 32) }),
        failedView ? null : el('td', {}, badge(t.status, TASK_TONE[t.status])),
        el('td', { class: 'num', text: num(t.attempts) }),
        el('td', { class: 'mono', text: t.worker_id ?? '—' }),
        el('td', { class: 'reason', title: t.failure_reason ?? '', text: t.failure_reason ?? '' }),
        el('td', { class: 'dead-error mono', title: t.error ?? '', text: t.error ? clip(t.error, 120) : '' }),
        failedView
          ? null
          : el(
              'td',
              {},
              t.status === 'succeeded'
                ? el('a', { href: taskUrl(t.task_id, '/result'), class: 'task-result', text: 'result' })
                : null,
            ),
      ),
    );
  }

  function callbackBlock(cb) {
    const tone = { delivered: 'ok', failed: 'bad', dead_lettered: 'bad', pending: 'quiet' }[cb.state] ?? 'info';
    return el(
      'div',
      { class: 'job-callback' },
      el('strong', { text: 'Callback ' }),
      badge(label(cb.state), tone),
      el('span', {
        class: 'muted',
        text: ` ${cb.url} · ${cb.attempts} of ${cb.max_attempts} attempt(s)${
          cb.last_status ? ` · last answer ${cb.last_status}` : ''
        }${cb.last_error ? ` · ${cb.last_error}` : ''}`,
      }),
    );
  }

  function renderJobDetail() {
    const box = byId('job-detail');
    box.hidden = !jobs.open;
    if (!jobs.open) return box.replaceChildren();
    const d = jobs.detail;
    const close = el('button', { class: 'button quiet close-job', type: 'button', text: 'Close' });
    if (!d) return box.replaceChildren(close, empty('Loading…'));
    if (d.error) return box.replaceChildren(close, empty(`Not available: ${d.error.message}`));
    const failed = d.tasks.filter((t) => t.status === 'failed');
    const actions = el(
      'div',
      { class: 'job-actions' },
      failed.length
        ? el('button', {
            class: 'button retry-job',
            type: 'button',
            'data-job': d.job_id,
            text: `Retry ${failed.length} failed`,
          })
        : null,
      el('button', { class: 'button quiet danger delete-job', type: 'button', 'data-job': d.job_id, text: 'Delete' }),
      close,
    );
    const head = el(
      'div',
      { class: 'job-head' },
      el('h3', { class: 'mono', text: d.job_id }),
      badge(label(d.status), JOB_TONE[d.status]),
      el('span', {
        class: 'muted',
        text: ` ${d.total} task(s): ${Object.entries(d.counts)
          .filter(([, n]) => n)
          .map(([status, n]) => `${n} ${status}`)
          .join(', ')}`,
      }),
    );
    const failedView = failed.length
      ? el(
          'div',
          { class: 'failed-tasks' },
          el('h4', { text: 'Failed tasks' }),
          table([['task'], ['image'], ['attempts', true], ['worker'], ['reason'], ['error']], taskRows(failed, true)),
        )
      : null;
    const all = el(
      'div',
      { class: 'all-tasks' },
      el('h4', { text: 'Tasks' }),
      table(
        [['task'], ['image'], ['status'], ['attempts', true], ['worker'], ['reason'], ['error'], ['result']],
        taskRows(d.tasks, false),
      ),
    );
    box.replaceChildren(head, actions, d.callback ? callbackBlock(d.callback) : null, failedView, all);
  }

  function openJob(id) {
    if (jobs.open !== id) jobs.detail = null;
    jobs.open = id;
    renderJobs();
    void loadJobs();
  }

  function closeJob() {
    jobs.open = null;
    jobs.detail = null;
    renderJobs();
  }

  function jobsPage(page) {
    jobs.page = page;
    jobs.list = null;
    byId('jobs').replaceChildren(empty('Loading…'));
    void loadJobs();
  }

  byId('jobs-status').addEventListener('change', (event) => {
    jobs.status = event.target.value;
    jobs.tokens = [null];
    jobsPage(0);
  });
  byId('jobs-next').addEventListener('click', () => {
    const next = jobs.list?.continuation;
    if (!next) return;
    jobs.tokens = [...jobs.tokens.slice(0, jobs.page + 1), next];
    jobsPage(jobs.page + 1);
  });
  byId('jobs-prev').addEventListener('click', () => jobs.page > 0 && jobsPage(jobs.page - 1));
  byId('jobs-panel').addEventListener('click', (event) => {
    const target = event.target instanceof Element ? event.target : null;
    const button = target?.closest('button');
    if (!button) return;
    const id = button.getAttribute('data-job');
    if (button.classList.contains('open-job')) openJob(id);
    else if (button.classList.contains('retry-job')) retryJob(id);
    else if (button.classList.contains('delete-job')) deleteJob(id);
    else if (button.classList.contains('close-job')) closeJob();
  });

  // ---------- host ----------

  function meter(title, percent, text) {
    const fill = el('span', { class: 'bar-fill' });
    fill.style.width = `${Math.max(0, Math.min(100, percent))}%`;
    return el(
      'div',
      { class: percent >= 90 ? 'meter bad' : percent >= 70 ? 'meter warn' : 'meter' },
      el('div', { class: 'meter-head' }, el('span', { text: title }), el('strong', { text })),
      el('span', { class: 'bar' }, fill),
    );
  }

  function renderHost() {
    if (!state.metrics) return;
    const h = state.metrics.host;
    byId('host').replaceChildren(
      meter('CPU (1-min load per core)', h.cpu_percent, `${num(h.cpu_percent, 1)}%`),
      meter('Memory', h.memory_percent, `${num(h.memory_percent, 1)}% · ${num(h.memory_used_mb)} MB`),
    );
    const cpu = snapshots().map((s) => ({ x: Date.parse(s.timestamp), y: s.host.cpu_percent }));
    const memory = snapshots().map((s) => ({ x: Date.parse(s.timestamp), y: s.host.memory_percent }));
    const canvas = byId('host-chart');
    canvas.setAttribute('data-points', String(cpu.length));
    if (!window.Chart) return;
    if (!hostChart) {
      const c1 = cssVar('--c-cpu', '#7c3aed');
      const c2 = cssVar('--c-mem', '#0891b2');
      hostChart = lineChart(
        canvas,
        [
          {
            label: 'CPU %',
            data: [],
            borderColor: c1,
            backgroundColor: withAlpha(c1, 0.12),
            fill: 'origin',
            cubicInterpolationMode: 'monotone',
          },
          { label: 'Memory %', data: [], borderColor: c2, backgroundColor: c2, cubicInterpolationMode: 'monotone' },
        ],
        { y: { beginAtZero: true, max: 100, ticks: { stepSize: 25 } } },
      );
    }
    setData(hostChart, [cpu, memory]);
  }

  // ---------- status and polling ----------

  function renderStatus(errors) {
    const banner = byId('banner');
    const since = state.updatedAt ? clock(state.updatedAt) : null;
    document.documentElement.setAttribute('data-state', errors.length ? (since ? 'stale' : 'offline') : 'live');
    banner.hidden = !errors.length;
    if (errors.length) {
      const reasons = [...new Set(errors.map((e) => e.reason))].map(
        (reason) =>
          `${reason}: ${errors
            .filter((e) => e.reason === reason)
            .map((e) => e.endpoint)
            .join(', ')}`,
      );
      banner.replaceChildren(
        el('strong', { text: 'Cannot reach the API. ' }),
        `${reasons.join('; ')}. ${since ? `Showing the last data received (metrics from ${since})` : 'No data yet'}; retrying every ${REFRESH_MS / 1000} s.`,
      );
    }
    byId('status-text').textContent = errors.length
      ? since
        ? `stale · metrics from ${since}`
        : 'offline'
      : `live · updated ${since}`;
  }

  async function refresh() {
    const names = Object.keys(ENDPOINTS);
    const results = await Promise.allSettled(names.map((name) => getJson(ENDPOINTS[name])));
    const errors = [];
    results.forEach((result, i) => {
      const name = names[i];
      if (result.status === 'fulfilled') {
        state[name] = result.value;
        if (name === 'dead') state.deadError = null;
        return;
      }
      const err =
        result.reason instanceof ApiError ? result.reason : new ApiError(ENDPOINTS[name], String(result.reason), 0);
      if (name === 'dead') state.deadError = err;
      errors.push(err);
    });
    // A 401 is no outage: the key is missing or wrong. Nothing is shown until one works.
    if (errors.some((e) => e.status === 401)) {
      lock(keys.get(FUNCTION_KEY) ? "That key was refused (401): it is not this app's function key." : '');
      return;
    }
    unlockView();
    if (results[0].status === 'fulfilled') state.updatedAt = Date.now();
    render();
    renderStatus(errors);
    await loadJobs();
  }

  function render() {
    // One failing section must not stop the others (nor the polling).
    for (const section of [renderCapabilities, renderRecent, renderWorkers, renderDead, renderHost]) {
      try {
        section();
      } catch (err) {
        console.warn(`dashboard: ${section.name} failed`, err);
      }
    }
  }

  let refreshing = null;
  function poll() {
    clearTimeout(timer);
    if (refreshing) return;
    refreshing = refresh()
      .catch((err) => console.warn('dashboard: refresh failed', err))
      .finally(() => {
        refreshing = null;
        if (!document.hidden && !locked) timer = setTimeout(poll, REFRESH_MS);
      });
  }

  // ---------- locked and unlocked ----------

  /** The key form instead of the data; a wrong key is forgotten and said so. */
  function lock(message) {
    locked = true;
    clearTimeout(timer);
    if (message) keys.forget();
    byId('content').hidden = true;
    byId('lock').hidden = false;
    byId('lock-button').hidden = true;
    byId('banner').hidden = true;
    byId('key-message').textContent = message;
    document.documentElement.setAttribute('data-state', 'locked');
    byId('status-text').textContent = 'locked';
    byId('key-input').focus();
  }

  function unlockView() {
    locked = false;
    byId('content').hidden = false;
    byId('lock').hidden = true;
    byId('lock-button').hidden = !keys.get(FUNCTION_KEY);
  }

  byId('key-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = byId('key-input');
    const key = input.value.trim();
    input.value = '';
    if (!key) return;
    keys.set(FUNCTION_KEY, key);
    byId('key-message').textContent = 'Checking…';
    poll();
  });

  // Lock: forget both keys and start again from a page with no data in it.
  byId('lock-button').addEventListener('click', () => {
    keys.forget();
    location.reload();
  });

  /**
   * Task records, results and the raw-data links need the key too, which a plain link cannot send: they are
   * fetched with it and shown from a blob: URL. A result is asked for as a stream through the API
   * (?download=stream), so the page never has to call storage itself.
   */
  document.addEventListener('click', (event) => {
    const link = event.target instanceof Element ? event.target.closest('a.keyed, a.task-result, a.task-record') : null;
    if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
    event.preventDefault();
    const target = window.open('about:blank', '_blank');
    const href = link.classList.contains('task-result') ? `${link.getAttribute('href')}?download=stream` : link.href;
    fetch(href, { headers: keyHeader(keys.get(FUNCTION_KEY)), cache: 'no-store' })
      .then(async (res) => {
        const blob = res.ok
          ? await res.blob()
          : new Blob([`${res.status}: ${await res.text()}`], { type: 'text/plain' });
        const url = URL.createObjectURL(blob);
        if (target) target.location.href = url;
        setTimeout(() => URL.revokeObjectURL(url), 60000);
      })
      .catch(() => target?.close());
  });

  // Requeue buttons are drawn with the dead letters.
  byId('dead').addEventListener('click', (event) => {
    const button = event.target instanceof Element ? event.target.closest('button.requeue, button.requeue-one') : null;
    if (!button) return;
    const capability = button.getAttribute('data-capability');
    if (button.classList.contains('requeue-one')) requeueLetter(capability, button.getAttribute('data-id'));
    else requeueCapability(capability);
  });

  // A key in the address bar (an old ?code= bookmark) is not used, and is taken out of the URL and history.
  if (new URLSearchParams(location.search).has('code')) {
    const url = new URL(location.href);
    url.searchParams.delete('code');
    history.replaceState(null, '', url.pathname + url.search);
  }

  if (window.Chart) {
    window.Chart.defaults.color = cssVar('--muted', '#64748b');
    window.Chart.defaults.borderColor = cssVar('--grid', '#e2e8f0');
    window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  }
  byId('refresh-note').textContent = ` · refreshes every ${REFRESH_MS / 1000} s`;
  // No polling while the tab is hidden; catch up at once when it shows again.
  document.addEventListener('visibilitychange', () => (document.hidden ? clearTimeout(timer) : poll()));
  poll();
})();
