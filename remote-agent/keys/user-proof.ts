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

/** Client side: the proof for `curveUser(client.publicKey)` towards the agent with `agentPublicKey`. */
export function makeUserProof(client: CurveKeyPair, agentPublicKey: string): { user: string; proof: string } {
  const user = curveUser(client.publicKey);
  const proof = createHmac("sha256", sharedSecret(client.secretKey, client.publicKey, agentPublicKey)).update(`farlab-user:${user}`).digest("hex");
  return { user, proof };
}

/** Agent side: whether `proof` shows that the client holds the secret key of `user` (`curve:KEY`). */
export function checkUserProof(agent: CurveKeyPair, user: string, proof: string | undefined): boolean {
  const match = /^curve:(.{40})$/.exec(user);
  if (!match || !proof || !/^[0-9a-f]{64}$/.test(proof)) return false;
  try {
    const expected = createHmac("sha256", sharedSecret(agent.secretKey, agent.publicKey, match[1])).update(`farlab-user:${user}`).digest();
    return timingSafeEqual(expected, Buffer.from(proof, "hex"));
  } catch {
    return false;
  }
}
