// typage (the npm package age-encryption), driven by tests/age_interop.rs:
//
//   node typage.mjs encrypt RECIPIENT...   stdin -> age file on stdout
//   node typage.mjs decrypt IDENTITY_FILE  age file on stdin -> plaintext
//
// An identity file is age's own format: one identity a line, `#` comments.
// Any failure is a message on stderr and exit status 1.
import { readFileSync } from "node:fs";
import * as age from "age-encryption";

const [command, ...args] = process.argv.slice(2);
const input = readFileSync(0);
try {
  let output;
  if (command === "encrypt") {
    const e = new age.Encrypter();
    for (const r of args) e.addRecipient(r);
    output = await e.encrypt(input);
  } else if (command === "decrypt") {
    const d = new age.Decrypter();
    const lines = readFileSync(args[0], "utf8").split("\n");
    for (const l of lines.map((l) => l.trim())) {
      if (l !== "" && !l.startsWith("#")) d.addIdentity(l);
    }
    output = await d.decrypt(input);
  } else {
    throw new Error(`unknown command ${command}; use encrypt or decrypt`);
  }
  process.stdout.write(output);
} catch (e) {
  process.stderr.write(`typage: ${e.message ?? e}\n`);
  process.exit(1);
}
