// The `posture` family (JavaScript): which containers run with settings that hand out the
// host — privileged, host namespaces, the engine's socket, added capabilities, ports open on
// every interface — scored for triage.
import { Family, Output, Param, get, seg } from './berth.js';

const family = new Family('posture', '0.1.0');

const DANGEROUS_CAPS = ['ALL', 'SYS_ADMIN', 'SYS_PTRACE', 'SYS_MODULE', 'NET_ADMIN', 'DAC_READ_SEARCH', 'SYS_RAWIO'];

/** The risks of one inspected container, each with its evidence. */
export function risksOf(c) {
  const h = c.HostConfig || {};
  const risks = [];
  const add = (id, weight, evidence) => risks.push({ id, weight, evidence });
  if (h.Privileged) add('privileged', 10, 'HostConfig.Privileged=true');
  if (h.NetworkMode === 'host') add('host-network', 6, 'HostConfig.NetworkMode=host');
  if (h.PidMode === 'host') add('host-pid', 6, 'HostConfig.PidMode=host');
  if (h.IpcMode === 'host') add('host-ipc', 4, 'HostConfig.IpcMode=host');
  for (const m of c.Mounts || []) {
    if (m.Type === 'bind' && /(^|\/)docker\.sock$/.test(m.Source || '')) add('engine-socket', 10, `bind ${m.Source} -> ${m.Destination}`);
    else if (m.Type === 'bind' && (m.Source === '/' || m.Source === '/etc' || m.Source === '/root')) add('host-root-mount', 8, `bind ${m.Source} -> ${m.Destination}${m.RW ? ' (rw)' : ''}`);
  }
  for (const cap of h.CapAdd || []) {
    const name = String(cap).replace(/^CAP_/, '');
    if (DANGEROUS_CAPS.includes(name)) add('capability', 5, `CapAdd ${name}`);
  }
  for (const [port, binds] of Object.entries((c.NetworkSettings || {}).Ports || {})) {
    for (const b of binds || []) {
      if (b.HostIp === '' || b.HostIp === '0.0.0.0' || b.HostIp === '::') add('published-all-interfaces', 2, `${port} on ${b.HostIp || '0.0.0.0'}:${b.HostPort}`);
    }
  }
  if (!(c.Config || {}).User) add('runs-as-root', 1, 'Config.User is empty');
  return risks;
}

family.action(
  {
    name: 'posture.risky-containers',
    summary: 'Score containers by settings that reach the host (privileged, host namespaces, engine socket, capabilities, open ports)',
    readOnly: true,
    params: [
      Param.bool('all', { default: false, description: 'Include stopped containers' }),
      Param.int('min_score', { default: 1, description: 'Report containers scoring at least this' }),
    ],
    output: ['data.*.Id', 'data.*.Name', 'data.*.score', 'data.*.risks.*.id', 'data.*.risks.*.evidence', 'summary.total_objects', 'summary.highest_score'],
    operations: ['ContainerList', 'ContainerInspect'],
  },
  (p) => {
    if (p.min_score < 0) throw new Error('min_score must not be negative');
    const list = get('/containers/json').query('all', p.all ? 'true' : 'false').jsonOk() || [];
    const rows = [];
    for (const summary of list) {
      const c = get(`/containers/${seg(summary.Id)}/json`).jsonOk();
      const risks = risksOf(c);
      const score = risks.reduce((n, r) => n + r.weight, 0);
      if (score < p.min_score) continue;
      rows.push({ Id: c.Id, Name: (c.Name || '').replace(/^\//, ''), Image: c.Config?.Image, State: c.State?.Status, score, risks });
    }
    rows.sort((a, b) => b.score - a.score || a.Name.localeCompare(b.Name));
    return Output.listed('containers at risk', rows).withSummary('highest_score', rows.length ? rows[0].score : 0);
  },
);

export const actions = family.exports();
