// berth guest SDK for JavaScript: declare actions, call the engine, return SOAR
// action_result shapes. Mirrors the Rust SDK (actions/sdk).
//
//   import { Family, Param, Output, get } from './berth.js';
//   const family = new Family('demo');
//   family.action({ name: 'demo.ping', summary: 'Ping the engine', readOnly: true,
//                   output: ['data.*.ok'], operations: ['SystemPing'] },
//                 (p) => Output.one('pong', { ok: get('/_ping').ok().text() === 'OK' }));
//   export const actions = family.exports();
//
// Build with `componentize-js --wit wit/since_v0.2.0 -n family -d http -d fetch-event -o out.wasm app.js`
// (without `-d http -d fetch-event` the component imports wasi:http, which berth does not
// provide), then `node <sdk>/stamp.mjs out.wasm` writes the contract section.

import * as engine from 'berth:connector/engine@0.2.0';
import * as hostLog from 'berth:connector/log@0.2.0';

export const CONTRACT = '0.2.0';

// ---------------------------------------------------------------------------------------
// Errors: throw one from an action; it becomes the WIT action-error of the same name.

export class BerthError extends Error {
  constructor(tag, message, status) {
    super(message);
    this.tag = tag;
    this.status = status;
  }
  toWit() {
    if (this.tag === 'engine') return { tag: 'engine', val: { status: this.status ?? 0, message: this.message } };
    return { tag: this.tag, val: this.message };
  }
}
export const badParams = (m) => new BerthError('bad-params', m);
export const denied = (m) => new BerthError('denied', m);
export const internal = (m) => new BerthError('internal', m);
export const engineFailure = (status, m) => new BerthError('engine', m, status);

// The host's engine-error variant as an SDK error (as the Rust SDK maps it).
function fromEngineError(e) {
  const v = e && Object.prototype.hasOwnProperty.call(e, 'payload') ? e.payload : e;
  if (!v || typeof v.tag !== 'string') return e;
  switch (v.tag) {
    case 'denied':
    case 'limit':
      return denied(v.val);
    case 'invalid':
      return badParams(v.val);
    default:
      return engineFailure(0, v.val);
  }
}

function host(fn) {
  try {
    return fn();
  } catch (e) {
    throw fromEngineError(e);
  }
}

// ---------------------------------------------------------------------------------------
// Engine calls.

const KEEP = /[A-Za-z0-9\-._~:@]/;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** Percent-encodes one path segment taken from user input (an id or a name). */
export function seg(s) {
  let out = '';
  for (const b of utf8.encode(String(s))) {
    const c = String.fromCharCode(b);
    out += b < 0x80 && KEEP.test(c) ? c : '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

export class Response {
  constructor(status, headers, body) {
    this.status = status;
    this.headers = headers;
    this.body = body;
  }
  header(name) {
    const n = name.toLowerCase();
    const h = this.headers.find(([k]) => k.toLowerCase() === n);
    return h ? h[1] : undefined;
  }
  get isSuccess() {
    return this.status >= 200 && this.status < 300;
  }
  text() {
    return fromUtf8.decode(this.body);
  }
  json() {
    if (!this.body.length) return null;
    try {
      return JSON.parse(this.text());
    } catch (e) {
      throw internal(`engine sent invalid JSON (${e.message})`);
    }
  }
  /** The response, or an engine error with the engine's own message on a non-2xx status. */
  ok() {
    if (this.isSuccess) return this;
    let message = this.text().trim();
    try {
      message = JSON.parse(message).message ?? message;
    } catch (_) {}
    throw engineFailure(this.status, message || `status ${this.status}`);
  }
}

export class Stream {
  constructor(head, body) {
    this.status = head.status;
    this.headers = head.headers;
    this.body = body;
  }
  /** The next chunk: bytes, an empty array when nothing arrived in time, null at the end. */
  read(maxBytes = 65536, timeoutMs = 30000) {
    const c = host(() => this.body.read(maxBytes, timeoutMs));
    if (c.tag === 'data') return c.val;
    if (c.tag === 'end') return null;
    return new Uint8Array();
  }
  *[Symbol.iterator]() {
    for (;;) {
      const c = this.read();
      if (c === null) return;
      if (c.length) yield c;
    }
  }
  /** Decoded lines (newline-delimited JSON streams). */
  *lines() {
    let buf = '';
    const dec = new TextDecoder();
    for (const chunk of this) {
      buf += dec.decode(chunk, { stream: true });
      const parts = buf.split('\n');
      buf = parts.pop();
      for (const l of parts) if (l.trim()) yield l;
    }
    if (buf.trim()) yield buf;
  }
}

export class Request {
  constructor(method, path) {
    this.req = { method, path, query: [], headers: [], body: { tag: 'empty' }, registry: undefined };
  }
  /** Adds key=value; null/undefined are left out, objects and arrays are sent as JSON (filters). */
  query(k, v) {
    if (v === undefined || v === null) return this;
    if (typeof v === 'object') v = JSON.stringify(v);
    this.req.query.push([k, String(v)]);
    return this;
  }
  header(k, v) {
    this.req.headers.push([k, v]);
    return this;
  }
  json(body) {
    this.req.body = { tag: 'bytes', val: utf8.encode(JSON.stringify(body)) };
    return this.header('Content-Type', 'application/json');
  }
  artifact(name, contentType = 'application/x-tar') {
    this.req.body = { tag: 'artifact', val: name };
    return this.header('Content-Type', contentType);
  }
  registry(name) {
    this.req.registry = name;
    return this;
  }
  send() {
    const r = host(() => engine.call(this.req));
    return new Response(r.status, r.headers, r.body);
  }
  /** send(), throwing an engine error on a non-2xx status. */
  ok() {
    return this.send().ok();
  }
  jsonOk() {
    return this.ok().json();
  }
  stream() {
    const [head, body] = host(() => engine.open(this.req));
    const s = new Stream(head, body);
    if (s.status < 200 || s.status >= 300) {
      const parts = [...s];
      const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const p of parts) {
        all.set(p, at);
        at += p.length;
      }
      new Response(s.status, s.headers, all).ok();
    }
    return s;
  }
  /** The 2xx body straight into the named output artifact; returns its info. */
  toArtifact(name) {
    const r = host(() => engine.callToArtifact(this.req, name));
    if (!r.artifact) {
      new Response(r.status, r.headers, r.errorBody).ok();
      throw engineFailure(r.status, 'no artifact was written');
    }
    const a = r.artifact;
    return { name: a.name, size: Number(a.size), sha256: a.sha256 };
  }
}

/** An output artifact written by the host as a tar, member by member; nothing appears until finish(). */
export class Tar {
  constructor(artifact) {
    this.w = host(() => engine.openTar(artifact));
  }
  /** Adds a member holding `data` (a string or bytes); returns { size, sha256 }. */
  bytes(name, data) {
    const m = host(() => this.w.addBytes(name, typeof data === 'string' ? utf8.encode(data) : data));
    return { size: Number(m.size), sha256: m.sha256 };
  }
  json(name, value) {
    return this.bytes(name, JSON.stringify(value, null, 2));
  }
  /** Sends `request` and streams its 2xx body into a member; returns { size, sha256 }. */
  response(name, request) {
    const m = host(() => this.w.addResponse(name, request.req));
    if (m.status < 200 || m.status >= 300) new Response(m.status, [], m.errorBody).ok();
    return { size: Number(m.size), sha256: m.sha256 };
  }
  /** Ends the tar; returns the artifact's { name, size, sha256 }. */
  finish() {
    const a = host(() => this.w.finish());
    return { name: a.name, size: Number(a.size), sha256: a.sha256 };
  }
}

export const get = (p) => new Request('GET', p);
export const head = (p) => new Request('HEAD', p);
export const post = (p) => new Request('POST', p);
export const put = (p) => new Request('PUT', p);
export const del = (p) => new Request('DELETE', p);
export const apiVersion = () => host(() => engine.apiVersion());

export const log = {
  info: (m) => hostLog.log('info', String(m)),
  debug: (m) => hostLog.log('debug', String(m)),
  warn: (m) => hostLog.log('warn', String(m)),
  progress: (id, current, total, message = '') => hostLog.progress(String(id), BigInt(current), total === undefined ? undefined : BigInt(total), String(message)),
};

// ---------------------------------------------------------------------------------------
// Output: the SOAR action_result body minus what the host adds.

export class Output {
  constructor(message = '', data = [], summary = {}) {
    this.message = message;
    this.data = data;
    this.summary = summary;
  }
  static one(message, item) {
    return new Output(message, [item]);
  }
  /** A list as the data, with summary.total_objects: "<n> <what>". */
  static listed(what, items) {
    return new Output(`${items.length} ${items.length === 1 ? singular(what) : what}`, items, { total_objects: items.length });
  }
  item(i) {
    this.data.push(i);
    return this;
  }
  withSummary(k, v) {
    this.summary[k] = v;
    return this;
  }
}

// ---------------------------------------------------------------------------------------
// Declarations.

const TYPES = { string: 'text', integer: 'integer', number: 'number', boolean: 'boolean', object: 'object', array: 'array', any: 'any' };
const KINDS = ['investigate', 'generic', 'contain', 'correct'];

/** A parameter: Param.string('image', { required: true, description: '...' }). */
export class Param {
  constructor(name, type, { required = false, default: def, description = '', secret = false } = {}) {
    if (!(type in TYPES)) throw new Error(`param ${name}: unknown type ${type}`);
    this.spec = { name, valueType: TYPES[type], required, default: def === undefined ? undefined : JSON.stringify(def), description, secret };
  }
  static string(n, o) { return new Param(n, 'string', o); }
  static int(n, o) { return new Param(n, 'integer', o); }
  static number(n, o) { return new Param(n, 'number', o); }
  static bool(n, o) { return new Param(n, 'boolean', o); }
  static object(n, o) { return new Param(n, 'object', o); }
  static array(n, o) { return new Param(n, 'array', o); }
}

/** The validated params as the host passed them (defaults filled in). */
export class Params {
  constructor(obj) {
    Object.assign(this, obj);
  }
  req(name) {
    const v = this[name];
    if (v === undefined || v === null || v === '') throw badParams(`parameter '${name}' is required`);
    return v;
  }
}

const MAX_TRACE = 1500;

// An uncaught error as `internal`: its name, message and the innermost stack frames.
function asInternal(e) {
  if (!(e instanceof Error)) return { tag: 'internal', val: `uncaught ${typeof e}: ${String(e)}` };
  let stack = (e.stack || '').split('\n').filter((l) => l.trim()).slice(0, 6).join('\n');
  if (stack.length > MAX_TRACE) stack = stack.slice(0, MAX_TRACE) + '...';
  return { tag: 'internal', val: `${e.name}: ${e.message}\nstack:\n${stack}` };
}

/** A family of actions; `family.exports()` is the `actions` export componentize-js wants. */
export class Family {
  constructor(name, version = '0.1.0') {
    this.name = name;
    this.version = version;
    this.actions = new Map();
  }
  action({ name, summary, kind = 'investigate', readOnly = false, params = [], output = [], operations = [] }, handler) {
    if (!name.startsWith(this.name + '.')) throw new Error(`action ${name} must start with the family name ${this.name}.`);
    if (!KINDS.includes(kind)) throw new Error(`action ${name}: unknown kind ${kind}`);
    const spec = { name, summary, kind, readOnly, params: params.map((p) => p.spec), output: output.map((o) => 'action_result.' + o), operations };
    this.actions.set(name, { spec, handler });
    return this;
  }
  describe() {
    return { name: this.name, version: this.version, actions: [...this.actions.values()].map((a) => a.spec) };
  }
  run(action, params) {
    const a = this.actions.get(action);
    if (!a) throw { payload: { tag: 'bad-params', val: `unknown action '${action}'` } };
    try {
      const p = JSON.parse(params);
      if (p === null || typeof p !== 'object' || Array.isArray(p)) throw badParams('params must be a JSON object');
      const out = a.handler(new Params(p));
      if (!(out instanceof Output)) throw internal(`${action} returned ${typeof out}, not an Output`);
      return { message: out.message, data: JSON.stringify(out.data), summary: JSON.stringify(out.summary) };
    } catch (e) {
      throw { payload: e instanceof BerthError ? e.toWit() : asInternal(e) };
    }
  }
  exports() {
    return { describe: () => this.describe(), run: (action, params) => this.run(action, params) };
  }
}

/** "containers running x" -> "container running x": the first word ending in s, made singular. */
function singular(what) {
  const words = what.split(' ');
  const i = words.findIndex((w) => w.endsWith('s'));
  if (i >= 0) {
    const w = words[i];
    if (w.endsWith('ies')) words[i] = w.slice(0, -3) + 'y';
    else if (['sses', 'xes', 'ches', 'shes'].some((e) => w.endsWith(e))) words[i] = w.slice(0, -2);
    else words[i] = w.slice(0, -1);
  }
  return words.join(' ');
}
