// Evaluates, with the pinned JSONata engine, the expression that builds the
// organization map's items (ListTargets' Output) from a page of targets and
// the execution's run request, as Step Functions would: each item must be
// the request, its target and the summary report, an array whatever the
// page holds. The Distributed Map reads no variable of the execution (a Go
// test checks that), so the request must reach the targets this way.
//
// usage: node items.js ORGANIZATION.asl.json
'use strict';
const fs = require('fs');
const jsonata = require('jsonata');

const def = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const output = def.States.ListTargets.Output;
const m = /^\{%([\s\S]*)%\}$/.exec(output);
if (!m) {
  console.error(`ListTargets.Output is not a JSONata expression: ${output}`);
  process.exit(1);
}
const expr = jsonata(m[1]);
const t1 = { accountId: '111122223333', region: 'eu-west-1' };
const t2 = { accountId: '444455556666', region: 'us-east-1' };
const cases = [
  { targets: [t1, t2], request: { dryRun: true } },
  { targets: [t1], request: {} },
  { targets: [t2], request: { dryRun: false, graceHours: 96 } },
  { targets: [], request: { dryRun: true } },
];
(async () => {
  let failed = false;
  for (const c of cases) {
    const got = await expr.evaluate({}, { states: { result: { Payload: { targets: c.targets, next: '' } } }, request: c.request });
    const want = c.targets.map((target) => ({ ...c.request, target, report: 'summary' }));
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      console.error(`request ${JSON.stringify(c.request)}, ${c.targets.length} targets: items ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
      failed = true;
    }
  }
  if (failed) process.exit(1);
  console.log(`ListTargets.Output builds each item from the request and its target (${cases.length} cases)`);
})();
