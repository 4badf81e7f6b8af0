// Writes the `berth:contract` custom section into a built component, so the host links it with
// the binding it was built for: `node actions/sdk-js/stamp.mjs out.wasm`. Runs on the build
// machine. A component already stamped is left alone when the version agrees, refused when not.
import { readFileSync, writeFileSync, renameSync } from 'node:fs';

// The version is the SDK's, read from berth.js without loading it (it imports the host's WIT).
const sdk = readFileSync(new URL('./berth.js', import.meta.url), 'utf8');
const CONTRACT = sdk.match(/export const CONTRACT = '([^']+)'/)[1];
const SECTION = 'berth:contract';

const leb = (n) => {
  const out = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    out.push(n ? b | 0x80 : b);
  } while (n);
  return out;
};
const readLeb = (d, i) => {
  let n = 0, shift = 0, b;
  do {
    b = d[i++];
    n += (b & 0x7f) * 2 ** shift;
    shift += 7;
  } while (b & 0x80);
  return [n, i];
};

function existing(d) {
  let i = 8;
  while (i < d.length) {
    const id = d[i];
    const [size, j] = readLeb(d, i + 1);
    if (id === 0) {
      const [nlen, k] = readLeb(d, j);
      if (Buffer.from(d.subarray(k, k + nlen)).toString() === SECTION) return Buffer.from(d.subarray(k + nlen, j + size)).toString();
    }
    i = j + size;
  }
  return null;
}

const path = process.argv[2];
if (!path || process.argv.length !== 3) {
  console.error('usage: node stamp.mjs COMPONENT.wasm');
  process.exit(2);
}
const d = readFileSync(path);
if (d.subarray(0, 8).toString('hex') !== '0061736d0d000100') {
  console.error(`${path}: not a wasm component`);
  process.exit(1);
}
const have = existing(d);
if (have !== null && have !== CONTRACT) {
  console.error(`${path}: already stamped for berth:connector ${have}, not ${CONTRACT}`);
  process.exit(1);
}
if (have === null) {
  const name = Buffer.from(SECTION);
  const payload = Buffer.concat([Buffer.from(leb(name.length)), name, Buffer.from(CONTRACT)]);
  writeFileSync(path + '.stamp', Buffer.concat([d, Buffer.from([0]), Buffer.from(leb(payload.length)), payload]));
  renameSync(path + '.stamp', path);
}
console.log(`${path}: berth:connector ${CONTRACT}`);
