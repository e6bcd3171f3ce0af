"""Independent access-token verifier for the Unhidra tests (PyJWT).

  verify_jwt.py verify < job     verify tokens, print counts as JSON

job = {"jwks_url", "issuer", "algs", "cached_jwks", "valid": [...],
       "valid_with_cached": [...], "forged": [...]}
Every "valid" token must verify against the JWKS fetched now; every
"valid_with_cached" token against the JWKS fetched earlier (a verifier that
cached the set before the key signed); every "forged" token must fail.
Exit 1 on any surprise.
"""
import json
import sys
import urllib.request

import jwt


def fetch(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def verify_with(keyset, token, algs, issuer):
    kid = jwt.get_unverified_header(token).get("kid")
    for k in keyset.keys:
        if k.key_id == kid:
            return jwt.decode(token, k.key, algorithms=algs, issuer=issuer,
                              options={"require": ["exp", "iat", "sub", "iss"]})
    raise jwt.InvalidTokenError("no key with kid %r" % kid)


def main():
    job = json.load(sys.stdin)
    algs, iss = job["algs"], job["issuer"]
    client = jwt.PyJWKClient(job["jwks_url"], cache_keys=False)
    fresh = jwt.PyJWKSet.from_dict(fetch(job["jwks_url"]))
    cached = jwt.PyJWKSet.from_dict(job["cached_jwks"])
    out = {"verified_fresh": 0, "verified_client": 0, "verified_cached": 0, "refused": 0, "errors": []}
    for t in job["valid"]:
        try:
            verify_with(fresh, t, algs, iss)
            out["verified_fresh"] += 1
            key = client.get_signing_key_from_jwt(t)
            jwt.decode(t, key.key, algorithms=algs, issuer=iss)
            out["verified_client"] += 1
        except Exception as e:  # report, keep counting
            out["errors"].append("valid token refused: %r" % e)
    for t in job["valid_with_cached"]:
        try:
            verify_with(cached, t, algs, iss)
            out["verified_cached"] += 1
        except Exception as e:
            out["errors"].append("token refused by the earlier JWKS: %r" % e)
    for t in job["forged"]:
        try:
            verify_with(fresh, t, algs, iss)
            out["errors"].append("forged token accepted: %s..." % t[:20])
        except Exception:
            out["refused"] += 1
    json.dump(out, sys.stdout)
    return 1 if out["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
