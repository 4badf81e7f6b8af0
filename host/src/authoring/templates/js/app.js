// The `{{name}}` family: berth actions in JavaScript (scaffolded by `berth new`).
import { Family, Output, Param, get } from './berth.js';

const family = new Family('{{name}}', '0.1.0');

family.action(
  {
    name: '{{name}}.summary',
    summary: 'Engine version and the containers it runs',
    readOnly: true,
    params: [Param.bool('all', { default: false, description: 'Count stopped containers too' })],
    output: ['data.*.version', 'data.*.containers', 'data.*.names', 'summary.containers'],
    operations: ['SystemVersion', 'ContainerList'],
  },
  (p) => {
    const version = get('/version').jsonOk();
    const names = (get('/containers/json').query('all', p.all ? 'true' : 'false').jsonOk() || []).map((c) => c.Names[0]);
    return Output.one(`engine ${version.Version} runs ${names.length} containers`, { version: version.Version, containers: names.length, names })
      .withSummary('containers', names.length);
  },
);

export const actions = family.exports();
