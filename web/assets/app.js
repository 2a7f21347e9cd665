// pgtrail event history. Plain JavaScript, no framework, no build step.
//
// Every string from a record is attacker-controlled: it reaches the page
// through textContent, createElement and URLSearchParams only, never as
// HTML. The page's state is its URL's query string, so that any view is a
// link to share.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const FILTERS = ['range', 'from', 'to', 'user', 'q', 'name', 'source', 'account', 'region', 'ip', 'error',
    'accessKey', 'eventId', 'resourceType', 'resourceName', 'readOnly'];
  const LEVELS = ['critical', 'high', 'medium', 'low', 'informational'];
  const SVG = 'http://www.w3.org/2000/svg';
  let seq = 0; // the current render; older answers are dropped

  // el makes an element with a class and text (as text, never HTML).
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function params() { return new URLSearchParams(location.search); }

  // go shows the view of the given query string and records it in history.
  function go(p, replace) {
    const url = '?' + p.toString();
    if (replace) history.replaceState(null, '', url); else history.pushState(null, '', url);
    render();
  }

  function showStatus(msg) { $('status').textContent = msg || ''; }

  // api fetches JSON from the page's API; a 401 shows the login form.
  async function api(path, p) {
    const url = p ? path + '?' + p.toString() : path;
    const r = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    if (r.status === 401) {
      showLogin();
      throw new Error('log in first');
    }
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(body.error || r.statusText);
    return body;
  }

  async function post(path, body) {
    return fetch(path, {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body || {}),
    });
  }

  function show(view) {
    for (const v of ['login-view', 'events-view', 'record-view', 'alerts-view']) $(v).hidden = v !== view;
    $('nav').hidden = view === 'login-view';
    $('logout').hidden = view === 'login-view';
    $('nav-events').className = view === 'alerts-view' ? '' : 'current';
    $('nav-alerts').className = view === 'alerts-view' ? 'current' : '';
  }

  function showLogin() {
    show('login-view');
    $('who').textContent = '';
    $('login-key').focus();
  }

  // fmtTime writes an RFC 3339 time as "2006-01-02 15:04:05Z".
  function fmtTime(t) {
    return String(t).replace('T', ' ').replace(/\.\d+/, '').replace(/\+00:00$/, 'Z');
  }

  // filterParams are the query's filters, without view or cursors.
  function filterParams(p) {
    const out = new URLSearchParams();
    for (const k of FILTERS.concat(['limit'])) if (p.get(k)) out.set(k, p.get(k));
    return out;
  }

  // recordLink is the URL of one record, keeping the query and the page it
  // was opened from, for the way back.
  function recordLink(p, id, at) {
    const q = filterParams(p);
    for (const c of ['older', 'newer']) if (p.get(c)) q.set(c, p.get(c));
    q.set('view', 'record');
    q.set('id', id);
    q.set('at', at);
    return q;
  }

  // ---- events ----

  function fillForm(p) {
    for (const k of FILTERS) {
      const f = $('f-' + k);
      if (f) f.value = p.get(k) || '';
    }
    if (!p.get('range')) $('f-range').value = p.get('from') || p.get('to') ? 'custom' : 'day';
    toggleCustom();
  }

  function toggleCustom() {
    const custom = $('f-range').value === 'custom';
    for (const l of document.querySelectorAll('label.custom')) l.hidden = !custom;
  }

  function formParams() {
    const p = new URLSearchParams();
    for (const k of FILTERS) {
      const f = $('f-' + k);
      const v = f ? f.value.trim() : '';
      if (v && !((k === 'from' || k === 'to') && $('f-range').value !== 'custom')) p.set(k, v);
    }
    const limit = params().get('limit');
    if (limit) p.set('limit', limit);
    return p;
  }

  async function renderEvents(p, my) {
    show('events-view');
    fillForm(p);
    const q = filterParams(p);
    const share = new URLSearchParams(q);
    $('share').href = '?' + share.toString();
    for (const c of ['older', 'newer']) if (p.get(c)) q.set(c, p.get(c));
    const tbody = $('events').tBodies[0];
    $('total').textContent = 'Loading…';
    $('older').disabled = $('newer').disabled = true;
    const page = await api('/api/events', q);
    if (my !== seq) return;
    if (fillCustom(page)) toggleCustom();
    const rows = document.createDocumentFragment();
    for (const e of page.events) rows.appendChild(eventRow(p, e));
    tbody.replaceChildren(rows);
    if (page.events.length === 0) {
      const tr = el('tr');
      const td = el('td', 'empty', 'No event matches in this range.');
      td.colSpan = 8;
      tr.appendChild(td);
      tbody.appendChild(tr);
    }
    setPager('older', page.older);
    setPager('newer', page.newer);
    $('total').textContent = page.events.length + ' shown';
    const fq = filterParams(p);
    api('/api/count', fq).then((c) => {
      if (my !== seq) return;
      $('total').textContent = page.events.length + ' shown of ' + (c.capped ? 'more than ' : '') +
        c.count.toLocaleString('en-US') + ' in range';
      performance.mark('pgtrail-count');
    }).catch(() => {});
    api('/api/activity', fq).then((a) => {
      if (my !== seq) return;
      drawChart(a, p);
      performance.mark('pgtrail-chart');
    }).catch((err) => {
      if (my === seq) $('chart').replaceChildren(el('p', 'hint', 'Activity: ' + err.message));
    });
  }

  // fillCustom shows a preset's resolved bounds in the custom inputs.
  function fillCustom(page) {
    if ($('f-range').value === 'custom') return false;
    $('f-from').value = String(page.from).slice(0, 19);
    $('f-to').value = String(page.to).slice(0, 19);
    return true;
  }

  function setPager(which, cursor) {
    const b = $(which);
    b.disabled = !cursor;
    b.dataset.cursor = cursor || '';
  }

  function eventRow(p, e) {
    const tr = el('tr');
    tr.dataset.id = e.id;
    const link = el('a', 'open', fmtTime(e.time));
    link.href = '?' + recordLink(p, e.id, e.time).toString();
    const tdTime = el('td', 'time');
    tdTime.appendChild(link);
    tr.appendChild(tdTime);
    for (const v of [e.name, e.user, e.source, e.account, e.region, e.sourceIp]) tr.appendChild(el('td', null, v));
    tr.appendChild(el('td', e.error ? 'err' : null, e.error));
    tr.addEventListener('click', (ev) => {
      if (ev.ctrlKey || ev.metaKey || ev.shiftKey) return; // the link opens a new tab
      ev.preventDefault();
      go(recordLink(p, e.id, e.time));
    });
    return tr;
  }

  function page(which) {
    const p = filterParams(params());
    p.set(which, $(which).dataset.cursor);
    go(p);
  }

  // drawChart draws the events per bucket as bars, the failed calls over
  // them in red; a click on a bar narrows the range to it.
  function drawChart(a, p) {
    const box = $('chart');
    const W = Math.max(box.clientWidth, 300), H = box.clientHeight || 120, top = 14, bottom = 16;
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    svg.setAttribute('preserveAspectRatio', 'none');
    svg.setAttribute('role', 'img');
    const from = Date.parse(a.from), to = Date.parse(a.to), span = Math.max(to - from, 1);
    const bucket = a.bucketSeconds * 1000;
    const max = a.buckets.reduce((m, b) => Math.max(m, b.events), 0);
    const x = (t) => ((t - from) / span) * W;
    const bw = Math.max((bucket / span) * W - 1, 1);
    const h = (n) => (max ? (n / max) * (H - top - bottom) : 0);
    const line = document.createElementNS(SVG, 'line');
    for (const [k, v] of [['x1', 0], ['x2', W], ['y1', H - bottom], ['y2', H - bottom]]) line.setAttribute(k, v);
    svg.appendChild(line);
    for (const b of a.buckets) {
      const t = Date.parse(b.start);
      const r = rect(Math.max(x(t), 0), H - bottom - h(b.events), bw, h(b.events), 'b');
      const title = document.createElementNS(SVG, 'title');
      title.textContent = fmtTime(b.start) + ': ' + b.events + ' events, ' + b.errors + ' errors';
      r.appendChild(title);
      r.addEventListener('click', () => {
        const q = filterParams(p);
        q.set('range', 'custom');
        q.set('from', new Date(t).toISOString().slice(0, 19));
        q.set('to', new Date(t + bucket - 1000).toISOString().slice(0, 19));
        go(q);
      });
      svg.appendChild(r);
      if (b.errors) svg.appendChild(rect(Math.max(x(t), 0), H - bottom - h(b.errors), bw, h(b.errors), 'e'));
    }
    svg.appendChild(text(2, 11, 'max ' + max + ' per ' + (a.bucketSeconds >= 86400 ? (a.bucketSeconds / 86400) + ' day' : 'hour'), 'start'));
    svg.appendChild(text(2, H - 3, fmtTime(a.from), 'start'));
    svg.appendChild(text(W - 2, H - 3, fmtTime(a.to), 'end'));
    box.replaceChildren(svg);
  }

  function rect(x, y, w, h, cls) {
    const r = document.createElementNS(SVG, 'rect');
    for (const [k, v] of [['x', x], ['y', y], ['width', w], ['height', Math.max(h, 0)]]) r.setAttribute(k, v);
    r.setAttribute('class', cls);
    return r;
  }

  function text(x, y, s, anchor) {
    const t = document.createElementNS(SVG, 'text');
    t.setAttribute('x', x);
    t.setAttribute('y', y);
    t.setAttribute('text-anchor', anchor);
    t.textContent = s;
    return t;
  }

  // ---- one record ----

  async function renderRecord(p, my) {
    show('record-view');
    const back = filterParams(p);
    for (const c of ['older', 'newer']) if (p.get(c)) back.set(c, p.get(c));
    $('back').href = '?' + back.toString();
    $('record-title').textContent = 'Loading…';
    $('record-json').textContent = '';
    const tbody = $('record-fields').tBodies[0];
    tbody.replaceChildren();
    const q = new URLSearchParams();
    q.set('id', p.get('id') || '');
    q.set('at', p.get('at') || '');
    const rec = await api('/api/event', q);
    if (my !== seq) return;
    const name = (rec.fields.find((f) => f.name === 'event_name') || {}).value || '';
    $('record-title').textContent = name + ' ' + fmtTime(p.get('at')) + ' ' + p.get('id');
    $('record-json').textContent = JSON.stringify(rec.record, null, 2);
    for (const f of rec.fields) {
      if (f.value === '') continue;
      const tr = el('tr');
      tr.appendChild(el('td', null, f.name));
      tr.appendChild(el('td', null, f.value));
      tbody.appendChild(tr);
    }
  }

  // ---- alerts ----

  async function renderAlerts(p, my) {
    show('alerts-view');
    const level = p.get('level') || '';
    $('a-level').value = level;
    const box = $('alerts');
    const res = await api('/api/alerts');
    if (my !== seq) return;
    const rules = [];
    for (const a of res.alerts) {
      if (level && a.level !== level) continue;
      const last = rules[rules.length - 1];
      if (last && last.id === a.ruleId) last.alerts.push(a);
      else rules.push({ id: a.ruleId, first: a, alerts: [a] });
    }
    const total = rules.reduce((n, r) => n + r.first.ruleAlerts, 0);
    $('alerts-total').textContent = total + ' open alerts, ' + rules.length + ' rules';
    const out = document.createDocumentFragment();
    for (const r of rules) out.appendChild(ruleBox(p, r, res.perRule));
    if (rules.length === 0) out.appendChild(el('p', 'hint', 'No open alert.'));
    box.replaceChildren(out);
  }

  function ruleBox(p, r, perRule) {
    const a = r.first;
    const div = el('div', 'rule');
    div.dataset.rule = a.ruleId;
    const head = el('header');
    head.appendChild(el('span', 'level' + (LEVELS.includes(a.level) ? ' ' + a.level : ''), a.level || 'no level'));
    head.appendChild(el('h3', null, a.title));
    head.appendChild(el('span', 'hint', a.ruleAlerts + ' open' + (a.ruleAlerts > perRule ? ', newest ' + perRule + ' shown' : '')));
    div.appendChild(head);
    const meta = el('div', 'meta');
    meta.appendChild(el('span', null, 'Author: ' + (a.author || 'unknown') + ' · rule ' + a.ruleId + ' · '));
    for (const t of a.tags || []) meta.appendChild(el('span', 'tag', t));
    div.appendChild(meta);
    const table = el('table');
    const hr = el('tr');
    for (const h of ['Event time (UTC)', 'Event', 'Principal', 'Account', 'Region', 'Source IP', 'Status']) hr.appendChild(el('th', null, h));
    table.appendChild(el('thead')).appendChild(hr);
    const tb = el('tbody');
    for (const x of r.alerts) {
      const tr = el('tr');
      const link = el('a', 'open', fmtTime(x.eventTime));
      link.href = '?' + recordLink(new URLSearchParams(), x.eventId, x.eventTime).toString();
      link.addEventListener('click', (ev) => {
        if (ev.ctrlKey || ev.metaKey) return;
        ev.preventDefault();
        go(recordLink(new URLSearchParams(), x.eventId, x.eventTime));
      });
      const td = el('td', 'time');
      td.appendChild(link);
      tr.appendChild(td);
      for (const v of [x.eventName, x.principal, x.account, x.region, x.sourceIp, x.status]) tr.appendChild(el('td', null, v));
      tb.appendChild(tr);
    }
    table.appendChild(tb);
    div.appendChild(table);
    return div;
  }

  // ---- wiring ----

  // render shows the view the URL names. body's data-state is "loading"
  // until it is done, then "ready", and data-renders counts the renders
  // done: what a test (or a script) waits for.
  async function render() {
    const my = ++seq;
    const p = params();
    document.body.dataset.state = 'loading';
    showStatus('');
    try {
      const s = await api('/api/session');
      $('who').textContent = s.accessKeyId;
      const view = p.get('view') || 'events';
      if (view === 'alerts') await renderAlerts(p, my);
      else if (view === 'record') await renderRecord(p, my);
      else await renderEvents(p, my);
    } catch (err) {
      if (my === seq && err.message !== 'log in first') showStatus(err.message);
    } finally {
      if (my === seq) {
        performance.mark('pgtrail-data'); // the first data shown: what the benchmark reads
        document.body.dataset.state = 'ready';
        document.body.dataset.renders = String(my);
      }
    }
  }

  function navLink(id, view) {
    $(id).addEventListener('click', (ev) => {
      ev.preventDefault();
      const p = view === 'events' ? filterParams(params()) : new URLSearchParams();
      if (view !== 'events') p.set('view', view);
      go(p);
    });
  }

  function internalLink(id) {
    $(id).addEventListener('click', (ev) => {
      if (ev.ctrlKey || ev.metaKey) return;
      ev.preventDefault();
      go(new URLSearchParams($(id).search));
    });
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('login-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      $('login-error').textContent = '';
      const r = await post('/api/login', { accessKeyId: $('login-key').value.trim(), secret: $('login-secret').value });
      $('login-secret').value = '';
      if (!r.ok) {
        const body = await r.json().catch(() => ({}));
        $('login-error').textContent = body.error || r.statusText;
        return;
      }
      render();
    });
    $('logout').addEventListener('click', async () => {
      await post('/api/logout');
      showLogin();
    });
    $('filters').addEventListener('submit', (ev) => {
      ev.preventDefault();
      go(formParams());
    });
    $('clear').addEventListener('click', () => {
      const p = new URLSearchParams();
      p.set('range', $('f-range').value);
      if ($('f-range').value === 'custom') {
        for (const k of ['from', 'to']) if ($('f-' + k).value) p.set(k, $('f-' + k).value);
      }
      go(p);
    });
    $('f-range').addEventListener('change', toggleCustom);
    $('older').addEventListener('click', () => page('older'));
    $('newer').addEventListener('click', () => page('newer'));
    $('a-level').addEventListener('change', () => {
      const p = new URLSearchParams();
      p.set('view', 'alerts');
      if ($('a-level').value) p.set('level', $('a-level').value);
      go(p, true);
    });
    navLink('nav-events', 'events');
    navLink('nav-alerts', 'alerts');
    internalLink('back');
    internalLink('share');
    window.addEventListener('popstate', render);
    render();
  });
}());
