/**
 * Binds the user a ZeroMQ client claims in `hello` to the CURVE key it holds. libzmq checks the
 * key during the handshake (ZAP), but does not tell zeromq.js which key a connection used, so the
 * client proves it: `proof = HMAC-SHA256(X25519(clientSecret, agentPublic), "farlab-user:" +
 * user)`, which the agent recomputes as X25519(agentSecret, clientPublic). Only the holder of the
 * client's secret key (or the agent) can make it; the hello travels CURVE-encrypted, so it cannot
 * be copied off the wire. The user of a ZeroMQ client is `curve:PUBLICKEY`.
 */
import { createHmac, createPrivateKey, createPublicKey, diffieHellman, timingSafeEqual } from "node:crypto";
import type { CurveKeyPair } from "./keypair";
import { z85Decode } from "./z85";

export function curveUser(publicKey: string): string {
  return `curve:${publicKey}`;
}

function sharedSecret(ourSecret: string, ourPublic: string, theirPublic: string): Buffer {
  const raw = (z85: string) => {
    const bytes = z85Decode(z85);
    if (!bytes || bytes.length !== 32) throw new Error("not a 32-byte Z85 CURVE key");
    return bytes.toString("base64url");
  };
  const privateKey = createPrivateKey({ key: { kty: "OKP", crv: "X25519", d: raw(ourSecret), x: raw(ourPublic) }, format: "jwk" });
  const publicKey = createPublicKey({ key: { kty: "OKP", crv: "X25519", x: raw(theirPublic) }, format: "jwk" });
  return diffieHellman({ privateKey, publicKey });
}

/** The proof's bytes: an HMAC of the user name under the X25519 secret both ends can compute. */
function proofFor(user: string, ours: CurveKeyPair, theirPublic: string): Buffer {
  return createHmac("sha256", sharedSecret(ours.secretKey, ours.publicKey, theirPublic)).update(`farlab-user:${user}`).digest();
}

/** Client side: the proof for `curveUser(client.publicKey)` towards the agent with `agentPublicKey`. */
export function makeUserProof(client: CurveKeyPair, agentPublicKey: string): { user: string; proof: string } {
  const user = curveUser(client.publicKey);
  return { user, proof: proofFor(user, client, agentPublicKey).toString("hex") };
}

/** Agent side: whether `proof` shows that the client holds the secret key of `user` (`curve:KEY`). */
export function checkUserProof(agent: CurveKeyPair, user: string, proof: string | undefined): boolean {
  const match = /^curve:(.{40})$/.exec(user);
  if (!match || !proof || !/^[0-9a-f]{64}$/.test(proof)) return false;
  try {
    return timingSafeEqual(proofFor(user, agent, match[1]), Buffer.from(proof, "hex"));
  } catch {
    return false;
  }
}
