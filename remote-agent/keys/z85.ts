/**
 * Z85 (ZeroMQ RFC 32), the text form of CURVE keys: 32 key bytes <-> 40 characters.
 * zeromq.js makes keys in Z85 but offers no codec, and the ZAP handler receives the client's key
 * as 32 raw bytes, so the few lines of the RFC's reference codec live here.
 */
const ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
const VALUE = new Map([...ALPHABET].map((c, i) => [c, i]));

export const Z85_KEY_LENGTH = 40;

/** Encodes bytes whose length is a multiple of 4. */
export function z85Encode(bytes: Uint8Array): string {
  if (bytes.length % 4 !== 0) throw new Error(`Z85 encodes multiples of 4 bytes, not ${bytes.length}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  let out = "";
  for (let i = 0; i < bytes.length; i += 4) {
    let value = view.getUint32(i);
    let group = "";
    for (let j = 0; j < 5; j++) {
      group = ALPHABET[value % 85] + group;
      value = Math.floor(value / 85);
    }
    out += group;
  }
  return out;
}

/** Decodes Z85 text; null if it is not valid Z85 (length, alphabet, or a group over 2^32 - 1). */
export function z85Decode(text: string): Buffer | null {
  if (text.length % 5 !== 0) return null;
  const out = Buffer.alloc((text.length / 5) * 4);
  for (let i = 0; i < text.length; i += 5) {
    let value = 0;
    for (let j = 0; j < 5; j++) {
      const digit = VALUE.get(text[i + j]);
      if (digit === undefined) return null;
      value = value * 85 + digit;
    }
    if (value > 0xffffffff) return null;
    out.writeUInt32BE(value, (i / 5) * 4);
  }
  return out;
}

/** Why `text` is not a CURVE public key in Z85, or null when it is one. */
export function curveKeyProblem(text: string): string | null {
  if (text.length !== Z85_KEY_LENGTH) {
    return `a CURVE key is ${Z85_KEY_LENGTH} characters of Z85 text, not ${text.length} characters ('${text}')`;
  }
  if (z85Decode(text) === null) {
    return `'${text}' is not Z85 text (characters allowed: 0-9 a-z A-Z . - : + = ^ ! / * ? & < > ( ) [ ] { } @ % $ #)`;
  }
  return null;
}
