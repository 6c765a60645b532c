// check.js - `make kql`: every KQL query of the docs, checked.
//
//   node tests/kql/check.js docs/operations.md docs/workbook.json
//
// Queries: every ```kusto block of a Markdown file, and every "query" of a
// workbook's KqlItem. Each is parsed and analysed by Microsoft's Kusto
// language service (@kusto/language-service-next, the library behind the
// portal's editor) against the columns of Application Insights' `traces`
// table and the workspace's `AppTraces` table: syntax errors, unknown
// columns, tables and functions, and wrong argument types are errors. Then
// every event field a query reads from the handler's JSON line (e.<field>
// or f.<field>, after `extend e = parse_json(...)`) must be one of the log
// fields docs/operations.md documents (the table between the
// log-fields markers, plus the base fields ts, level, inv, fn, msg).
// Exit 0 when all pass, 1 otherwise (each problem printed with the file and
// the query's first line).
'use strict';
const fs = require('fs');
const path = require('path');

require('@kusto/language-service-next/bridge.js');
require('@kusto/language-service-next/Kusto.Language.Bridge.js');
/* global Kusto */
const K = Kusto.Language;
const S = K.Symbols;
const T = S.ScalarTypes;

function col(name, type) {
  return new S.ColumnSymbol(name, type, null, null, null, null);
}
// Application Insights `traces` (classic view) and Log Analytics `AppTraces`
// (workspace-based): the documented columns
const traces = new S.TableSymbol.$ctor4('traces', [
  col('timestamp', T.DateTime), col('message', T.String), col('severityLevel', T.Int),
  col('itemType', T.String), col('customDimensions', T.Dynamic), col('customMeasurements', T.Dynamic),
  col('operation_Name', T.String), col('operation_Id', T.String), col('operation_ParentId', T.String),
  col('operation_SyntheticSource', T.String), col('session_Id', T.String), col('user_Id', T.String),
  col('user_AuthenticatedId', T.String), col('user_AccountId', T.String), col('application_Version', T.String),
  col('client_Type', T.String), col('client_Model', T.String), col('client_OS', T.String),
  col('client_IP', T.String), col('client_City', T.String), col('client_StateOrProvince', T.String),
  col('client_CountryOrRegion', T.String), col('client_Browser', T.String), col('cloud_RoleName', T.String),
  col('cloud_RoleInstance', T.String), col('appId', T.String), col('appName', T.String),
  col('iKey', T.String), col('sdkVersion', T.String), col('itemId', T.String), col('itemCount', T.Int),
  col('_ResourceId', T.String),
]);
const appTraces = new S.TableSymbol.$ctor4('AppTraces', [
  col('TenantId', T.String), col('TimeGenerated', T.DateTime), col('Message', T.String),
  col('SeverityLevel', T.Int), col('Properties', T.Dynamic), col('Measurements', T.Dynamic),
  col('OperationName', T.String), col('OperationId', T.String), col('ParentId', T.String),
  col('SyntheticSource', T.String), col('SessionId', T.String), col('UserId', T.String),
  col('UserAuthenticatedId', T.String), col('UserAccountId', T.String), col('AppVersion', T.String),
  col('AppRoleName', T.String), col('AppRoleInstance', T.String), col('ClientType', T.String),
  col('ClientModel', T.String), col('ClientOS', T.String), col('ClientIP', T.String),
  col('ClientCity', T.String), col('ClientStateOrProvince', T.String), col('ClientCountryOrRegion', T.String),
  col('ClientBrowser', T.String), col('ResourceGUID', T.String), col('IKey', T.String),
  col('SDKVersion', T.String), col('ItemCount', T.Int), col('ReferencedItemId', T.String),
  col('ReferencedType', T.String), col('SourceSystem', T.String), col('Type', T.String),
  col('_ResourceId', T.String),
]);
const db = new S.DatabaseSymbol.ctor('appinsights', [traces, appTraces]);
const globals = K.GlobalState.Default.WithCluster(new S.ClusterSymbol.ctor('cluster', [db])).WithDatabase(db);

function diagnostics(query) {
  const code = K.KustoCode.ParseAndAnalyze(query, globals);
  const d = code.GetDiagnostics();
  const out = [];
  for (let i = 0; i < d.Count; i++) {
    const x = d.getItem(i);
    if (String(x.Severity) === 'Error')
      out.push(`${x.Message} (at offset ${x.Start}: "${query.substr(x.Start, 30).replace(/\n/g, ' ')}")`);
  }
  return out;
}

// the documented log fields: the first column of the table between the markers
function logFields(md) {
  const m = /<!-- log-fields:begin -->([\s\S]*?)<!-- log-fields:end -->/.exec(md);
  if (!m)
    throw new Error('docs/operations.md: no <!-- log-fields:begin --> ... end --> table');
  const fields = new Set(['ts', 'level', 'inv', 'fn', 'msg']);
  for (const line of m[1].split('\n')) {
    const cell = line.split('|')[1] || '';
    for (const f of cell.matchAll(/`([a-z_]+)`/g))
      fields.add(f[1]);
  }
  return fields;
}

function queriesOf(file) {
  const text = fs.readFileSync(file, 'utf8');
  if (file.endsWith('.json')) {
    const out = [];
    const walk = (v) => {
      if (Array.isArray(v))
        v.forEach(walk);
      else if (v && typeof v === 'object') {
        if (v.version === 'KqlItem/1.0' && typeof v.query === 'string')
          out.push(v.query);
        Object.values(v).forEach(walk);
      }
    };
    walk(JSON.parse(text));
    return out;
  }
  return [...text.matchAll(/```kusto\n([\s\S]*?)```/g)].map((m) => m[1]);
}

const files = process.argv.slice(2);
if (!files.length) {
  console.error('usage: node check.js FILE.md|FILE.json...');
  process.exit(2);
}
const ops = files.find((f) => path.basename(f) === 'operations.md');
const fields = logFields(fs.readFileSync(ops || 'docs/operations.md', 'utf8'));
let n = 0, bad = 0;
for (const file of files) {
  const qs = queriesOf(file);
  if (!qs.length) {
    console.error(`${file}: no KQL queries found`);
    bad++;
  }
  for (const q of qs) {
    n++;
    const problems = diagnostics(q);
    // event fields read from the parsed line: <var>.<field> or <var>["field"]
    const vars = new Set([...q.matchAll(/\b([a-z])\s*=\s*parse_json\(/g)].map((m) => m[1]));
    for (const v of vars) {
      for (const m of q.matchAll(new RegExp(`\\b${v}\\.([A-Za-z_]+)|\\b${v}\\["([A-Za-z_]+)"\\]`, 'g'))) {
        const f = m[1] || m[2];
        if (!fields.has(f))
          problems.push(`reads ${v}.${f}, which is not a documented log field`);
      }
    }
    if (problems.length) {
      bad++;
      console.error(`${file}: query "${q.split('\n')[0].trim()}":`);
      for (const p of problems)
        console.error(`  ${p}`);
    }
  }
}
console.log(`kql: ${n} queries checked, ${bad} with problems`);
console.log(`${n - bad} passed, ${bad} failed`);
process.exit(bad ? 1 : 0);
