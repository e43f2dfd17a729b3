#!/usr/bin/env node
// Validates every manifest in deploy/kubernetes/ against the Kubernetes API schemas, with
// kubernetes-models (its validators are generated from the API's OpenAPI definitions; offline,
// no cluster). Each document's apiVersion and kind pick its model; an unknown kind is an error.
// Prints one line per document and a summary; exits 1 on any invalid document.
//   node scripts/validate-kubernetes.mjs [file…]
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

const DIR = fileURLToPath(new URL('../deploy/kubernetes/', import.meta.url));

/** Problems of each document of `file`: [{ doc: "Kind name", errors: [message…] }]. */
export async function validateFile(file) {
  const out = [];
  for (const parsed of parseAllDocuments(readFileSync(file, 'utf8'))) {
    if (parsed.errors.length) {
      out.push({ doc: '(unparsed)', errors: parsed.errors.map((e) => e.message) });
      continue;
    }
    const doc = parsed.toJS();
    if (doc === null) continue; // an empty document (a trailing ---)
    const name = `${doc.kind ?? '?'} ${doc.metadata?.namespace ? `${doc.metadata.namespace}/` : ''}${doc.metadata?.name ?? '?'}`;
    let Model;
    try {
      Model = (await import(/* @vite-ignore */ `kubernetes-models/${doc.apiVersion}/${doc.kind}`))[doc.kind];
    } catch {
      out.push({ doc: name, errors: [`no schema for apiVersion ${doc.apiVersion}, kind ${doc.kind}`] });
      continue;
    }
    try {
      new Model(doc).validate();
      out.push({ doc: name, errors: [] });
    } catch (err) {
      out.push({ doc: name, errors: (err.errors ?? [err]).map((e) => (e.instancePath ? `${e.instancePath} ${e.message}` : e.message)) });
    }
  }
  return out;
}

export function manifests() {
  return readdirSync(DIR).filter((f) => /\.ya?ml$/.test(f)).map((f) => path.join(DIR, f));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const files = process.argv.length > 2 ? process.argv.slice(2) : manifests();
  let valid = 0;
  let invalid = 0;
  for (const file of files) {
    for (const { doc, errors } of await validateFile(file)) {
      if (errors.length === 0) {
        valid++;
        console.log(`${path.relative(process.cwd(), file)}: ${doc}: valid`);
      } else {
        invalid++;
        console.log(`${path.relative(process.cwd(), file)}: ${doc}: INVALID\n${errors.map((e) => `  ${e}`).join('\n')}`);
      }
    }
  }
  console.log(`${valid} valid, ${invalid} invalid (kubernetes-models schemas)`);
  process.exitCode = invalid ? 1 : 0;
}
