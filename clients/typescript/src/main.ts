// What an integrator's generated client does with umkm-api: log in, list businesses, and read
// a problem answer. Every path, parameter, body and answer below is typed from the committed
// OpenAPI document (`npm run generate`), so `tsc` fails when the contract drifts from this use.
//
//     UMKM_API=http://127.0.0.1:8080 UMKM_EMAIL=admin@localhost UMKM_PASSWORD=… npm start

import createClient from "openapi-fetch";
import type { components, paths } from "./api.js";

type Business = components["schemas"]["BusinessView"];
type Problem = components["schemas"]["Problem"];

const base = process.env.UMKM_API ?? "http://127.0.0.1:8080";
const email = process.env.UMKM_EMAIL ?? "admin@localhost";
const password = process.env.UMKM_PASSWORD ?? "";

const api = createClient<paths>({ baseUrl: base });

async function logIn(): Promise<string> {
  const { data, error, response } = await api.POST("/api/v1/auth/token", {
    body: { email, password },
  });
  if (data === undefined) {
    throw new Error(`login failed with ${response.status}: ${JSON.stringify(error)}`);
  }
  // A person's login answers TokenResponse; a client's grant would add `scope`.
  return data.access_token;
}

async function activeBusinesses(token: string, district: string): Promise<Business[]> {
  const found: Business[] = [];
  let cursor: string | undefined;
  do {
    const { data, error } = await api.GET("/api/v1/businesses", {
      headers: { Authorization: `Bearer ${token}` },
      params: { query: { district, status: "active", limit: 100, ...(cursor ? { cursor } : {}) } },
    });
    if (data === undefined) {
      throw new Error(`listing failed: ${error.title}: ${error.detail}`);
    }
    // The list also answers CSV and NDJSON exports (by Accept); without one it is a JSON page.
    if (typeof data === "string") {
      throw new Error("expected a JSON page, got an export");
    }
    found.push(...data.data);
    cursor = data.next_cursor ?? undefined;
  } while (cursor !== undefined && found.length < 300);
  return found;
}

/** A business with a bad district: the answer is a problem naming the field. */
async function badBusiness(token: string): Promise<Problem> {
  const { error, response } = await api.POST("/api/v1/businesses", {
    headers: { Authorization: `Bearer ${token}` },
    body: {
      name: "Kripik Ikan Bu Sri",
      owner_name: "Sri Wahyuni",
      owner_nik: "3524055203900002",
      phone: "0812-3456-789",
      kbli: "10750",
      district_code: "99.99.99",
      address: "Jl. Raya Paciran No. 12",
    },
  });
  if (error === undefined) {
    throw new Error(`a business in an unknown district was accepted (${response.status})`);
  }
  return error;
}

async function main(): Promise<void> {
  const token = await logIn();
  const businesses = await activeBusinesses(token, "35.24.05");
  for (const b of businesses.slice(0, 5)) {
    console.log(`${b.id}\t${b.name}\t${b.scale ?? "-"}\t${b.district_code}`);
  }
  console.log(`${businesses.length} active businesses read`);
  const problem = await badBusiness(token);
  const fields = (problem.errors ?? []).map((e) => `${e.field}: ${e.message}`);
  console.log(`problem ${problem.status} ${problem.title}: ${fields.join("; ")}`);
  if (!fields.some((f) => f.startsWith("district_code"))) {
    throw new Error("the problem did not name district_code");
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
