// A JavaScript family for the SDK's tests: structured errors, an uncaught error, a stream,
// and the gate holding an action to its declared operations.
import { Family, Output, Param, Tar, get, seg, denied, BerthError, log } from './berth.js';

const family = new Family('jsprobe', '0.3.0');

function deep(n) {
  if (n === 0) return null.missingField;
  return deep(n - 1);
}

family.action({ name: 'jsprobe.crash', summary: 'Throw an uncaught TypeError three frames down', readOnly: true }, () => deep(3));

family.action({ name: 'jsprobe.refuse', summary: 'Throw a structured denied error', readOnly: true }, () => {
  throw denied('jsprobe refuses on purpose');
});

family.action(
  {
    name: 'jsprobe.inspect-missing',
    summary: "Inspect a container that does not exist: the engine's 404 as a structured error",
    readOnly: true,
    params: [Param.string('name', { required: true })],
    operations: ['ContainerInspect'],
  },
  (p) => Output.one('found', get(`/containers/${seg(p.req('name'))}/json`).jsonOk()),
);

family.action(
  {
    name: 'jsprobe.events',
    summary: "Read the engine's event stream up to now, through the body-stream resource",
    readOnly: true,
    params: [Param.string('since', { default: '0' }), Param.string('until', { required: true })],
    operations: ['SystemEvents'],
    output: ['data.*.Type', 'summary.total_objects'],
  },
  (p) => {
    const rows = [...get('/events').query('since', p.since).query('until', p.until).stream().lines()].map((l) => JSON.parse(l));
    log.info(`${rows.length} events`);
    return Output.listed('events', rows);
  },
);

family.action(
  { name: 'jsprobe.undeclared', summary: 'Declares ContainerList, then asks for /info: the host refuses it', readOnly: true, operations: ['ContainerList'] },
  () => {
    get('/containers/json').jsonOk();
    try {
      get('/info').jsonOk();
    } catch (e) {
      if (e instanceof BerthError) return Output.one('refused', { refused: e.message, tag: e.tag });
      throw e;
    }
    return Output.one('allowed', { refused: null });
  },
);

family.action(
  { name: 'jsprobe.version', summary: "GET /version, as system.version does: the benchmark's like-for-like call", readOnly: true, operations: ['SystemVersion'], output: ['data.*.Version', 'summary.version'] },
  () => {
    const v = get('/version').jsonOk();
    return Output.one(`Docker ${v.Version}`, v).withSummary('version', v.Version);
  },
);

family.action(
  { name: 'jsprobe.bundle', summary: "A tar into `out`: a bytes member and the engine's /version streamed into another", operations: ['SystemVersion'], output: ['data.*.sha256', 'data.*.members'] },
  () => {
    const t = new Tar('out');
    const note = t.bytes('note.txt', 'collected by jsprobe');
    const version = t.response('engine/version.json', get('/version'));
    const info = t.finish();
    return Output.one('bundled', { sha256: info.sha256, size: info.size, members: { 'note.txt': note.sha256, 'engine/version.json': version.sha256 } });
  },
);

export const actions = family.exports();
