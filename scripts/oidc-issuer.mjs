// A real OAuth2 / OpenID Connect issuer for tests: oauth2-mock-server's
// library, run with what a production issuer does and its CLI does not.
//
//   node scripts/oidc-issuer.mjs PORT CLIENT_ID CLIENT_SECRET AUDIENCE
//
// - The issuer URL is pinned to http://127.0.0.1:PORT (the CLI says
//   localhost), so `iss` and the discovery document agree with what Vigie is
//   configured with.
// - client_credentials: one client, whose secret is checked (HTTP Basic or
//   client_id/client_secret in the form); anything else gets 401
//   invalid_client.
// - Access tokens carry `sub` and `client_id` (the client), `aud` (AUDIENCE,
//   or the form's `aud`) and the requested `scope`.
// - For the tests' refusals, the form field `vigie_test` asks for a real,
//   signed token that is wrong on purpose: `expired` (exp an hour ago) or
//   `foreign_issuer` (iss of another issuer).
// - Key rotation: `POST /vigie-test/rotate` publishes a new signing key
//   (tokens then alternate between the keys, as the library rotates them);
//   `GET /vigie-test/stats` counts the JWKS requests served, so a test can
//   see how often a resource server refetched the keys.
//
// Prints "ready ISSUER_URL" once listening. ES modules ignore NODE_PATH, so
// scripts/services.sh runs a copy from a scratch folder whose node_modules
// links to the cached install of oauth2-mock-server.
import { createServer } from "node:http";
import { OAuth2Issuer, OAuth2Service } from "oauth2-mock-server";

const [port, clientId, clientSecret, audience] = process.argv.slice(2);
if (!port || !clientId || !clientSecret || !audience) {
    console.error("usage: oidc-issuer.mjs PORT CLIENT_ID CLIENT_SECRET AUDIENCE");
    process.exit(2);
}

/** The client id and secret of a token request, from Basic auth or the form. */
function credentials(req) {
    const basic = /^Basic\s+(.+)$/i.exec(req.headers.authorization ?? "");
    if (basic) {
        const decoded = Buffer.from(basic[1], "base64").toString("utf8");
        const colon = decoded.indexOf(":");
        if (colon >= 0) {
            return {
                id: decodeURIComponent(decoded.slice(0, colon)),
                secret: decodeURIComponent(decoded.slice(colon + 1)),
            };
        }
    }
    return { id: req.body?.client_id, secret: req.body?.client_secret };
}

function knownClient(req) {
    const { id, secret } = credentials(req);
    return id === clientId && secret === clientSecret;
}

const issuer = new OAuth2Issuer();
await issuer.keys.generate("RS256");
issuer.url = `http://127.0.0.1:${port}`;
const service = new OAuth2Service(issuer);
let jwksRequests = 0;

service.addRoute("POST", "/vigie-test/rotate", async (_req, res) => {
    const key = await issuer.keys.generate("RS256");
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ kid: key.kid }));
});
service.addRoute("GET", "/vigie-test/stats", (_req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ jwks_requests: jwksRequests }));
});

service.on("beforeTokenSigning", (token, req) => {
    const { id } = credentials(req);
    token.payload.sub = id;
    token.payload.client_id = id;
    token.payload.aud = req.body?.aud ?? audience;
    if (req.body?.scope !== undefined) {
        token.payload.scope = req.body.scope;
    }
    const now = Math.floor(Date.now() / 1000);
    switch (req.body?.vigie_test) {
        case "expired":
            token.payload.iat = now - 7200;
            token.payload.nbf = now - 7200;
            token.payload.exp = now - 3600;
            break;
        case "foreign_issuer":
            token.payload.iss = "http://127.0.0.1:9/another-issuer";
            break;
        default:
            break;
    }
});

service.on("beforeResponse", (response, req) => {
    if (req.body?.grant_type !== "client_credentials") {
        response.statusCode = 400;
        response.body = { error: "unsupported_grant_type", error_description: "client_credentials only" };
    } else if (!knownClient(req)) {
        response.statusCode = 401;
        response.body = { error: "invalid_client", error_description: "unknown client or wrong secret" };
    }
});

const server = createServer((req, res) => {
    if (req.method === "GET" && req.url === "/jwks") {
        jwksRequests += 1;
    }
    service.requestHandler(req, res);
});
server.listen(Number(port), "127.0.0.1", () => console.log(`ready ${issuer.url}`));

for (const signal of ["SIGINT", "SIGTERM"]) {
    process.on(signal, () => server.close(() => process.exit(0)));
}
