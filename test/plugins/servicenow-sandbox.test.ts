import { expect } from 'chai';
import createClient, { type Client } from 'openapi-fetch';
import type { paths as OAuthPaths } from '../../plugins/servicenow/generated/oauth.js';
import type { operations, paths as TablePaths } from '../../plugins/servicenow/generated/table-api.js';
import { startServiceNowSandbox, type ServiceNowSandbox, type ServiceNowSandboxOptions } from '../../plugins/servicenow/sandbox/index.js';

/**
 * The ServiceNow sandbox over real HTTP on 127.0.0.1, through the openapi-fetch client generated from
 * openapi/servicenow/*.yaml. The facts it must follow are in docs/servicenow-api.md.
 */

type Table = Client<TablePaths>;
type ApprovalQuery = NonNullable<operations['listApprovals']['parameters']['query']>;
type Field = string | { readonly [key: string]: string | undefined } | undefined;

const APPROVALS = '/api/now/table/sysapproval_approver';

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

function tableClient(sb: ServiceNowSandbox, authorization = basic(sb.credentials.username, sb.credentials.password)): Table {
  return createClient<TablePaths>({ baseUrl: sb.url, headers: { authorization } });
}

function oauthClient(sb: ServiceNowSandbox): Client<OAuthPaths> {
  return createClient<OAuthPaths>({ baseUrl: sb.url });
}

/** A token request, form-encoded as /oauth_token.do requires. */
function token(sb: ServiceNowSandbox, body: Record<string, string>) {
  return oauthClient(sb).POST('/oauth_token.do', {
    body: { client_id: sb.credentials.clientId, client_secret: sb.credentials.clientSecret, ...body } as never,
    bodySerializer: (b) => new URLSearchParams(b as Record<string, string>).toString(),
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
  });
}

/** `Link: <url>;rel="first",…` → rel → URL. */
function links(header: string | null): Record<string, URL> {
  const out: Record<string, URL> = {};
  for (const m of (header ?? '').matchAll(/<([^>]+)>;rel="([a-z]+)"/g)) out[m[2]!] = new URL(m[1]!);
  return out;
}

/** The query of a Link URL, as the generated client takes it. */
function queryOf(url: URL): ApprovalQuery {
  return Object.fromEntries(url.searchParams) as unknown as ApprovalQuery;
}

function text(value: Field): string {
  if (typeof value !== 'string') throw new Error(`expected a plain string, got ${JSON.stringify(value)}`);
  return value;
}

/** Every approval of the query, following rel="next" until there is none; also the page count and X-Total-Count of page one. */
async function readAll(client: Table, query: ApprovalQuery): Promise<{ ids: string[]; pages: number; total: number }> {
  const ids: string[] = [];
  let pages = 0;
  let total = -1;
  let next: ApprovalQuery | undefined = query;
  while (next) {
    const page: ApprovalQuery = next;
    const { data, response } = await client.GET(APPROVALS, { params: { query: page } });
    expect(response.status).to.equal(200);
    if (total < 0) total = Number(response.headers.get('x-total-count'));
    pages++;
    for (const r of data!.result) ids.push(text(r.sys_id));
    const nextUrl: URL | undefined = links(response.headers.get('link')).next;
    next = nextUrl ? queryOf(nextUrl) : undefined;
  }
  return { ids, pages, total };
}

describe('ServiceNow sandbox (real HTTP)', function () {
  let sb: ServiceNowSandbox;
  let client: Table;
  /** A user with no seeded approvals, one per test that needs a clean slate. */
  let spare: string[];

  before(async () => {
    sb = await startServiceNowSandbox({ seed: 7, users: 40, approvers: 4, freezeClock: true });
    client = tableClient(sb);
    spare = sb.admin
      .users()
      .slice(1 + 4)
      .map((u) => u.sysId);
  });
  after(async () => sb.close());

  const fresh = (): string => {
    const id = spare.shift();
    if (!id) throw new Error('out of spare users');
    return id;
  };
  const freshUser = () => {
    const id = fresh();
    return sb.admin.users().find((u) => u.sysId === id)!;
  };

  describe('paging', () => {
    it('pages 1,000 approvals with Link (first/prev/next/last) and X-Total-Count, each record once', async () => {
      const approver = fresh();
      const created = sb.admin.createApprovals({ count: 1000, approvers: [approver] });
      const query: ApprovalQuery = { sysparm_query: `approver=${approver}^ORDERBYsys_updated_on^ORDERBYsys_id`, sysparm_limit: 100, sysparm_fields: 'sys_id' };

      const first = await client.GET(APPROVALS, { params: { query } });
      expect(first.response.headers.get('x-total-count')).to.equal('1000');
      const firstLinks = links(first.response.headers.get('link'));
      expect(Object.keys(firstLinks)).to.deep.equal(['first', 'next', 'last']);
      expect(firstLinks.next!.searchParams.get('sysparm_offset')).to.equal('100');
      expect(firstLinks.last!.searchParams.get('sysparm_offset')).to.equal('900');
      expect(firstLinks.next!.searchParams.get('sysparm_query')).to.equal(query.sysparm_query);
      expect(firstLinks.next!.origin).to.equal(sb.url);

      const middle = await client.GET(APPROVALS, { params: { query: { ...query, sysparm_offset: 500 } } });
      const middleLinks = links(middle.response.headers.get('link'));
      expect(Object.keys(middleLinks)).to.deep.equal(['first', 'prev', 'next', 'last']);
      expect(middleLinks.prev!.searchParams.get('sysparm_offset')).to.equal('400');

      const last = await client.GET(APPROVALS, { params: { query: queryOf(firstLinks.last!) } });
      expect(Object.keys(links(last.response.headers.get('link')))).to.deep.equal(['first', 'prev', 'last']);

      const all = await readAll(client, query);
      expect(all.pages).to.equal(10);
      expect(all.total).to.equal(1000);
      expect(new Set(all.ids).size).to.equal(1000);
      expect([...all.ids].sort()).to.deep.equal([...created.approvals].sort());
      // All 1,000 share one second, so ORDERBYsys_id decides the whole order.
      expect(all.ids).to.deep.equal([...all.ids].sort());
    });

    it('sends no Link when one page holds everything, and honours sysparm_no_count / sysparm_suppress_pagination_header', async () => {
      const approver = fresh();
      sb.admin.createApprovals({ count: 3, approvers: [approver] });
      const one = await client.GET(APPROVALS, { params: { query: { sysparm_query: `approver=${approver}`, sysparm_limit: 10 } } });
      expect(one.data!.result).to.have.length(3);
      expect(one.response.headers.get('link')).to.equal(null);
      expect(one.response.headers.get('x-total-count')).to.equal('3');
      const quiet = await client.GET(APPROVALS, {
        params: { query: { sysparm_query: `approver=${approver}`, sysparm_limit: 1, sysparm_no_count: 'true', sysparm_suppress_pagination_header: 'true' } },
      });
      expect(quiet.data!.result).to.have.length(1);
      expect(quiet.response.headers.get('link')).to.equal(null);
      expect(quiet.response.headers.get('x-total-count')).to.equal(null);
    });
  });

  describe('encoded queries', () => {
    it('supports =, !=, >, >=, <, <=, IN, ^OR and ORDERBYDESC with a second ORDERBY', async () => {
      const approver = fresh();
      const early = sb.admin.createApprovals({ count: 3, approvers: [approver] }).approvals;
      const t0 = sb.admin.now();
      sb.admin.advanceClock(10);
      const late = sb.admin.createApprovals({ count: 3, approvers: [approver] }).approvals;
      const t1 = sb.admin.now();
      sb.admin.advanceClock(10);
      sb.admin.approve(early[0]!, 'fine');
      sb.admin.reject(early[1]!, 'no budget');
      const t2 = sb.admin.now();
      const ids = async (q: string): Promise<string[]> => {
        const { data, error } = await client.GET(APPROVALS, {
          params: { query: { sysparm_query: q, sysparm_fields: 'sys_id', sysparm_exclude_reference_link: 'true' } },
        });
        expect(error).to.equal(undefined);
        return data!.result.map((r) => text(r.sys_id));
      };
      const sorted = (list: readonly string[]): string[] => [...list].sort();

      expect(sorted(await ids(`approver=${approver}`))).to.deep.equal(sorted([...early, ...late]));
      expect(sorted(await ids(`approver=${approver}^state=requested`))).to.deep.equal(sorted([early[2]!, ...late]));
      expect(sorted(await ids(`approver=${approver}^state!=requested`))).to.deep.equal(sorted([early[0]!, early[1]!]));
      expect(sorted(await ids(`approver=${approver}^sys_updated_on>=${t1}`))).to.deep.equal(sorted([early[0]!, early[1]!, ...late]));
      expect(sorted(await ids(`approver=${approver}^sys_updated_on>${t1}`))).to.deep.equal(sorted([early[0]!, early[1]!]));
      expect(sorted(await ids(`approver=${approver}^sys_updated_on<=${t0}`))).to.deep.equal([early[2]!]);
      expect(sorted(await ids(`approver=${approver}^sys_updated_on<${t1}`))).to.deep.equal([early[2]!]);
      expect(await ids(`approver=${approver}^sys_updated_on>${t2}`)).to.deep.equal([]);
      expect(sorted(await ids(`sys_idIN${late[0]},${early[1]},00000000000000000000000000000000`))).to.deep.equal(sorted([late[0]!, early[1]!]));
      expect(sorted(await ids(`approver=${approver}^state=approved^ORstate=rejected`))).to.deep.equal(sorted([early[0]!, early[1]!]));
      expect(sorted(await ids(`approver=${approver}^stateINapproved,rejected`))).to.deep.equal(sorted([early[0]!, early[1]!]));

      // Newest second first; inside a second, sys_id ascending.
      const ordered = await ids(`approver=${approver}^ORDERBYDESCsys_updated_on^ORDERBYsys_id`);
      expect(ordered).to.deep.equal([...sorted([early[0]!, early[1]!]), ...sorted(late), early[2]!]);
    });

    it('dot-walks references in conditions and fields (approver.email, sysapproval.number)', async () => {
      const approver = freshUser();
      const { approvals, tasks } = sb.admin.createApprovals({ count: 2, approvers: [approver.userName] });
      const task = sb.admin.record('sc_req_item', tasks[1]!)!;
      const { data } = await client.GET(APPROVALS, {
        params: {
          query: {
            sysparm_query: `approver.email=${approver.email}^sysapproval.number=${task.number}`,
            sysparm_fields: 'sys_id,approver.email,sysapproval.number',
          },
        },
      });
      expect(data!.result).to.deep.equal([{ sys_id: approvals[1], 'approver.email': approver.email, 'sysapproval.number': task.number }]);
    });

    it('breaks ties by sys_id only when asked: without it, records of one second come in a different order per request', async () => {
      const approver = fresh();
      sb.admin.createApprovals({ count: 50, approvers: [approver] });
      const order = async (q: string): Promise<string[]> =>
        (await client.GET(APPROVALS, { params: { query: { sysparm_query: q, sysparm_fields: 'sys_id' } } })).data!.result.map((r) => text(r.sys_id));
      const a = await order(`approver=${approver}^ORDERBYsys_updated_on`);
      const b = await order(`approver=${approver}^ORDERBYsys_updated_on`);
      expect([...a].sort()).to.deep.equal([...b].sort());
      expect(a).to.not.deep.equal(b);
      const c = await order(`approver=${approver}^ORDERBYsys_updated_on^ORDERBYsys_id`);
      const d = await order(`approver=${approver}^ORDERBYsys_updated_on^ORDERBYsys_id`);
      expect(c).to.deep.equal(d);
      expect(c).to.deep.equal([...c].sort());
    });

    it('reads gs.dateGenerate in the API user time zone and plain values as UTC', async () => {
      const east = await startServiceNowSandbox({ seed: 3, userTimeZoneOffsetMinutes: 120, freezeClock: true, clock: '2026-05-04 10:00:00' });
      try {
        const c = tableClient(east);
        const approver = east.admin.users()[6]!.sysId;
        east.admin.createApprovals({ count: 2, approvers: [approver] });
        east.admin.advanceClock(3600);
        const later = east.admin.createApprovals({ count: 1, approvers: [approver] }).approvals;
        const find = async (q: string) =>
          (await c.GET(APPROVALS, { params: { query: { sysparm_query: q, sysparm_fields: 'sys_id' } } })).data!.result.map((r) => text(r.sys_id));
        expect(await find(`approver=${approver}^sys_updated_on>=2026-05-04 11:00:00`)).to.deep.equal(later);
        // 13:00 in UTC+2 is 11:00 UTC.
        expect(await find(`approver=${approver}^sys_updated_on>=javascript:gs.dateGenerate('2026-05-04','13:00:00')`)).to.deep.equal(later);
        const shown = await c.GET(APPROVALS, {
          params: { query: { sysparm_query: `sys_id=${later[0]}`, sysparm_fields: 'sys_updated_on', sysparm_display_value: 'all' } },
        });
        expect(shown.data!.result[0]!.sys_updated_on).to.deep.equal({ display_value: '2026-05-04 13:00:00', value: '2026-05-04 11:00:00' });
      } finally {
        await east.close();
      }
    });
  });

  describe('display values', () => {
    it('answers actual values, display values or both, with reference links unless excluded', async () => {
      const approver = freshUser();
      const { approvals, tasks } = sb.admin.createApprovals({ count: 1, approvers: [approver.sysId] });
      const id = approvals[0]!;
      const task = sb.admin.record('sc_req_item', tasks[0]!)!;
      const fields = 'approver,state,sysapproval,source_table,sys_updated_on';
      const get = async (display: 'true' | 'false' | 'all', exclude: 'true' | 'false') =>
        (
          await client.GET('/api/now/table/sysapproval_approver/{sys_id}', {
            params: { path: { sys_id: id }, query: { sysparm_fields: fields, sysparm_display_value: display, sysparm_exclude_reference_link: exclude } },
          })
        ).data!.result;
      const userLink = `${sb.url}/api/now/table/sys_user/${approver.sysId}`;
      const taskLink = `${sb.url}/api/now/table/task/${task.sys_id}`;
      const at = sb.admin.record('sysapproval_approver', id)!.sys_updated_on;
      expect(at).to.match(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);

      expect(await get('false', 'false')).to.deep.equal({
        approver: { link: userLink, value: approver.sysId },
        state: 'requested',
        sysapproval: { link: taskLink, value: task.sys_id },
        source_table: 'sc_req_item',
        sys_updated_on: at,
      });
      expect(await get('true', 'false')).to.deep.equal({
        approver: { display_value: approver.name, link: userLink },
        state: 'Requested',
        sysapproval: { display_value: task.number, link: taskLink },
        source_table: 'sc_req_item',
        sys_updated_on: at,
      });
      expect(await get('all', 'false')).to.deep.equal({
        approver: { display_value: approver.name, link: userLink, value: approver.sysId },
        state: { display_value: 'Requested', value: 'requested' },
        sysapproval: { display_value: task.number, link: taskLink, value: task.sys_id },
        source_table: { display_value: 'sc_req_item', value: 'sc_req_item' },
        sys_updated_on: { display_value: at, value: at },
      });
      expect((await get('false', 'true')).approver).to.equal(approver.sysId);
      expect((await get('true', 'true')).approver).to.equal(approver.name);
      expect((await get('all', 'true')).approver).to.deep.equal({ display_value: approver.name, value: approver.sysId });

      sb.admin.cancel(id);
      expect((await get('all', 'true')).state).to.deep.equal({ display_value: 'Cancelled', value: 'cancelled' });
      sb.admin.setState(id, 'not_required');
      expect((await get('all', 'true')).state).to.deep.equal({ display_value: 'No Longer Required', value: 'not_required' });
    });

    it('serves the records an approval points at: sys_user, sc_req_item and change_request by sys_id and by sys_idIN', async () => {
      const approver = freshUser();
      const item = sb.admin.createApprovals({ count: 1, approvers: [approver.sysId] }).tasks[0]!;
      const change = sb.admin.createApprovals({ count: 1, table: 'change_request', approvers: [approver.sysId] }).tasks[0]!;

      const user = await client.GET('/api/now/table/sys_user/{sys_id}', {
        params: { path: { sys_id: approver.sysId }, query: { sysparm_fields: 'email,name,user_name' } },
      });
      expect(user.data!.result).to.deep.equal({ email: approver.email, name: approver.name, user_name: approver.userName });

      const ritm = await client.GET('/api/now/table/sc_req_item/{sys_id}', {
        params: {
          path: { sys_id: item },
          query: {
            sysparm_fields: 'number,short_description,price,quantity,requested_for',
            sysparm_display_value: 'all',
            sysparm_exclude_reference_link: 'true',
          },
        },
      });
      const r = ritm.data!.result;
      expect(text((r.number as { value: string }).value)).to.match(/^RITM\d{7}$/);
      expect(r.price).to.deep.equal({ display_value: '$1,299.00', value: '1299.00' });
      expect(r.quantity).to.deep.equal({ display_value: '1', value: '1' });

      const chg = await client.GET('/api/now/table/change_request/{sys_id}', {
        params: {
          path: { sys_id: change },
          query: { sysparm_fields: 'number,risk,start_date,end_date,requested_by', sysparm_display_value: 'true', sysparm_exclude_reference_link: 'true' },
        },
      });
      expect(text(chg.data!.result.number)).to.match(/^CHG\d{7}$/);
      expect(chg.data!.result.risk).to.equal('Moderate');

      const batch = await client.GET('/api/now/table/sys_user', {
        params: { query: { sysparm_query: `sys_idIN${approver.sysId},${sb.admin.users()[0]!.sysId}`, sysparm_fields: 'user_name' } },
      });
      expect(batch.data!.result.map((u) => u.user_name).sort()).to.deep.equal([approver.userName, sb.credentials.username].sort());
      const items = await client.GET('/api/now/table/sc_req_item', { params: { query: { sysparm_query: `sys_idIN${item}`, sysparm_fields: 'sys_id' } } });
      expect(items.data!.result).to.deep.equal([{ sys_id: item }]);
      const changes = await client.GET('/api/now/table/change_request', {
        params: { query: { sysparm_query: `sys_idIN${change}`, sysparm_fields: 'sys_id' } },
      });
      expect(changes.data!.result).to.deep.equal([{ sys_id: change }]);
    });
  });

  describe('records updated while a client reads', () => {
    it('50 approvals updated in one second across a page boundary: a >= cursor with ORDERBYsys_id reads them all, a > cursor loses the rest', async () => {
      const approver = fresh();
      const ids = sb.admin.createApprovals({ count: 60, approvers: [approver] }).approvals;
      sb.admin.advanceClock(5);
      const bySysId = [...ids].sort();
      // 50 of them, around the boundary of the first page of 20 (the sys_id order the pages follow).
      const touched = bySysId.slice(5, 55);
      const second = sb.admin.touch(touched, { state: 'approved' });
      expect(new Set(touched.map((id) => sb.admin.record('sysapproval_approver', id)!.sys_updated_on))).to.deep.equal(new Set([second]));

      const query: ApprovalQuery = { sysparm_query: `approver=${approver}^sys_updated_on>=${second}^ORDERBYsys_updated_on^ORDERBYsys_id`, sysparm_limit: 20 };
      const all = await readAll(client, query);
      expect(all.pages).to.equal(3);
      expect(all.total).to.equal(50);
      expect(all.ids).to.deep.equal([...touched].sort());

      // A client that keeps only "last sys_updated_on seen" after page one asks for > that second and gets nothing.
      const strict = await client.GET(APPROVALS, { params: { query: { sysparm_query: `approver=${approver}^sys_updated_on>${second}` } } });
      expect(strict.data!.result).to.have.length(0);
    });

    it('moves records between pages while a client pages by offset (the list-page hook), so offset paging skips records', async () => {
      const approver = fresh();
      const ids = sb.admin.createApprovals({ count: 60, approvers: [approver] }).approvals;
      sb.admin.advanceClock(1);
      let pagesServed = 0;
      sb.admin.onListPage((page) => {
        if (page.table !== 'sysapproval_approver' || pagesServed++ !== 0) return;
        // After page one went out: half of it is updated and moves to the end of the order.
        sb.admin.touch(page.sysIds.slice(0, 10));
      });
      try {
        const seen = await readAll(client, {
          sysparm_query: `approver=${approver}^ORDERBYsys_updated_on^ORDERBYsys_id`,
          sysparm_limit: 20,
          sysparm_fields: 'sys_id',
        });
        const missed = ids.filter((id) => !seen.ids.includes(id));
        expect(missed).to.have.length(10);
        expect(seen.ids).to.have.length(60);
        expect(new Set(seen.ids).size).to.equal(50);
      } finally {
        sb.admin.onListPage(undefined);
      }
    });
  });

  describe('rate limits and faults', () => {
    it('answers a 429 storm with Retry-After and X-RateLimit-*, then serves again', async () => {
      sb.admin.rateLimitStorm(2, 3);
      for (let i = 0; i < 2; i++) {
        const limited = await client.GET(APPROVALS, { params: { query: { sysparm_limit: 1 } } });
        expect(limited.response.status).to.equal(429);
        expect(limited.response.headers.get('retry-after')).to.equal('3');
        expect(limited.response.headers.get('x-ratelimit-limit')).to.match(/^\d+$/);
        expect(Number(limited.response.headers.get('x-ratelimit-reset'))).to.be.greaterThan(1_700_000_000);
        expect(limited.response.headers.get('x-ratelimit-rule')).to.match(/^[0-9a-f]{32}$/);
        expect(limited.error).to.deep.include({ status: 'failure' });
        expect(limited.error!.error.message).to.equal('Rate limit exceeded');
      }
      const ok = await client.GET(APPROVALS, { params: { query: { sysparm_limit: 1 } } });
      expect(ok.response.status).to.equal(200);
    });

    it('injects 429s and 5xx by rate on the Table API only; the token endpoint is exempt by default', async () => {
      try {
        sb.admin.setFaults({ rate429: 1, retryAfterSeconds: 7 });
        const limited = await client.GET(APPROVALS, { params: { query: { sysparm_limit: 1 } } });
        expect(limited.response.status).to.equal(429);
        expect(limited.response.headers.get('retry-after')).to.equal('7');
        const tokenOk = await token(sb, { grant_type: 'client_credentials' });
        expect(tokenOk.response.status).to.equal(200);

        sb.admin.setFaults({ rate503: 1 });
        const down = await client.GET(APPROVALS, { params: { query: { sysparm_limit: 1 } } });
        expect(down.response.status).to.equal(503);
        expect(down.error).to.deep.include({ status: 'failure' });
        sb.admin.setFaults({ rate500: 1 });
        expect((await client.GET(APPROVALS, { params: { query: { sysparm_limit: 1 } } })).response.status).to.equal(500);
      } finally {
        sb.admin.setFaults('none');
      }
      expect(() => sb.admin.setFaults({ rate429: 2 })).to.throw(RangeError);
    });
  });

  describe('authentication', () => {
    it('client_credentials: an access token and no refresh token; the token reads the Table API', async () => {
      const { data, response } = await token(sb, { grant_type: 'client_credentials' });
      expect(response.status).to.equal(200);
      expect(data).to.include({ token_type: 'Bearer', expires_in: 1799 });
      expect(data!.refresh_token).to.equal(undefined);
      const bearer = tableClient(sb, `Bearer ${data!.access_token}`);
      expect((await bearer.GET(APPROVALS, { params: { query: { sysparm_limit: 1 } } })).response.status).to.equal(200);
    });

    it('password then refresh_token: the live access token is reused, the refresh token stays the same, an expired token gets 401', async () => {
      const approver = sb.admin.approvers()[0]!;
      const first = await token(sb, { grant_type: 'password', username: approver.userName, password: sb.credentials.userPassword });
      expect(first.response.status).to.equal(200);
      expect(first.data!.refresh_token).to.be.a('string');
      const again = await token(sb, { grant_type: 'password', username: approver.userName, password: sb.credentials.userPassword });
      expect(again.data!.access_token).to.equal(first.data!.access_token);

      sb.admin.expireAccessTokens();
      const stale = await tableClient(sb, `Bearer ${first.data!.access_token}`).GET(APPROVALS, { params: { query: { sysparm_limit: 1 } } });
      expect(stale.response.status).to.equal(401);
      expect(stale.error!.status).to.equal('failure');

      const refreshed = await token(sb, { grant_type: 'refresh_token', refresh_token: first.data!.refresh_token! });
      expect(refreshed.response.status).to.equal(200);
      expect(refreshed.data!.access_token).to.not.equal(first.data!.access_token);
      expect(refreshed.data!.refresh_token).to.equal(first.data!.refresh_token);
      const fresh2 = tableClient(sb, `Bearer ${refreshed.data!.access_token}`);
      expect((await fresh2.GET(APPROVALS, { params: { query: { sysparm_limit: 1 } } })).response.status).to.equal(200);
    });

    it('refuses a wrong client secret, a wrong password, an unknown refresh token, JSON bodies and unknown grants', async () => {
      const wrongSecret = await oauthClient(sb).POST('/oauth_token.do', {
        body: { grant_type: 'client_credentials', client_id: sb.credentials.clientId, client_secret: 'nope' },
        bodySerializer: (b) => new URLSearchParams(b as Record<string, string>).toString(),
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      });
      expect(wrongSecret.response.status).to.equal(401);
      expect(wrongSecret.error).to.have.property('error');
      expect((await token(sb, { grant_type: 'password', username: sb.credentials.username, password: 'nope' })).response.status).to.equal(401);
      expect((await token(sb, { grant_type: 'refresh_token', refresh_token: 'nope' })).response.status).to.equal(401);
      expect((await token(sb, { grant_type: 'authorization_code' })).response.status).to.equal(400);
      const json = await oauthClient(sb).POST('/oauth_token.do', {
        body: { grant_type: 'client_credentials', client_id: sb.credentials.clientId, client_secret: sb.credentials.clientSecret },
      });
      expect(json.response.status).to.equal(400);
    });

    it('refuses client_credentials where the instance has not enabled it', async () => {
      const off = await startServiceNowSandbox({ seed: 2, clientCredentialsEnabled: false });
      try {
        expect((await token(off, { grant_type: 'client_credentials' })).response.status).to.equal(401);
        expect((await token(off, { grant_type: 'password', username: off.credentials.username, password: off.credentials.password })).response.status).to.equal(
          200,
        );
      } finally {
        await off.close();
      }
    });

    it('basic auth: the integration user reads; a wrong or missing password gets 401 with WWW-Authenticate', async () => {
      expect((await client.GET(APPROVALS, { params: { query: { sysparm_limit: 1 } } })).response.status).to.equal(200);
      const wrong = await tableClient(sb, basic(sb.credentials.username, 'wrong')).GET(APPROVALS, { params: { query: { sysparm_limit: 1 } } });
      expect(wrong.response.status).to.equal(401);
      expect(wrong.response.headers.get('www-authenticate')).to.match(/^basic/i);
      expect(wrong.error).to.deep.equal({ error: { message: 'User Not Authenticated', detail: 'Invalid credentials or token' }, status: 'failure' });
      const none = await createClient<TablePaths>({ baseUrl: sb.url }).GET(APPROVALS, { params: { query: { sysparm_limit: 1 } } });
      expect(none.response.status).to.equal(401);
      expect(none.error!.error.detail).to.equal('Required to provide Auth information');
    });
  });

  describe('errors', () => {
    it('answers bad queries, unknown tables, bad paging parameters and unknown records in the ServiceNow error shape', async () => {
      const bad = await client.GET(APPROVALS, { params: { query: { sysparm_query: 'no_such_field=1' } } });
      expect(bad.response.status).to.equal(400);
      expect(bad.error).to.deep.equal({
        error: { message: 'Invalid query', detail: 'no_such_field is not a field of sysapproval_approver' },
        status: 'failure',
      });
      for (const q of ['stateBETWEEN1@2', 'ORDERBYnope', 'sys_updated_on>javascript:gs.daysAgo(1)']) {
        const res = await client.GET(APPROVALS, { params: { query: { sysparm_query: q } } });
        expect(res.response.status, q).to.equal(400);
        expect(res.error!.error.message, q).to.equal('Invalid query');
      }
      const limit = await client.GET(APPROVALS, { params: { query: { sysparm_limit: 0 } } });
      expect(limit.response.status).to.equal(400);
      expect(limit.error!.status).to.equal('failure');
      const display = await client.GET(APPROVALS, { params: { query: { sysparm_display_value: 'yes' as never } } });
      expect(display.response.status).to.equal(400);

      const auth = { authorization: basic(sb.credentials.username, sb.credentials.password) };
      const table = await fetch(`${sb.url}/api/now/table/no_such_table`, { headers: auth });
      expect(table.status).to.equal(400);
      expect(await table.json()).to.deep.equal({ error: { message: 'Invalid table no_such_table', detail: null }, status: 'failure' });

      const missing = await client.GET('/api/now/table/sysapproval_approver/{sys_id}', { params: { path: { sys_id: '0123456789abcdef0123456789abcdef' } } });
      expect(missing.response.status).to.equal(404);
      expect(missing.error).to.deep.equal({
        error: { message: 'No Record found', detail: "Record doesn't exist or ACL restricts the record retrieval" },
        status: 'failure',
      });
    });

    it("can instead ignore an invalid condition (ServiceNow's default) or return no rows (glide.invalid_query.returns_no_rows)", async () => {
      for (const [mode, expected] of [
        ['ignore', 'all'],
        ['no_rows', 'none'],
      ] as const) {
        const other = await startServiceNowSandbox({ seed: 4, invalidQuery: mode });
        try {
          const c = tableClient(other);
          const total = Number((await c.GET(APPROVALS, { params: { query: { sysparm_fields: 'sys_id' } } })).response.headers.get('x-total-count'));
          expect(total).to.be.greaterThan(0);
          const res = await c.GET(APPROVALS, { params: { query: { sysparm_query: 'no_such_field=1', sysparm_fields: 'sys_id' } } });
          expect(res.response.status).to.equal(200);
          expect(res.data!.result).to.have.length(expected === 'all' ? total : 0);
        } finally {
          await other.close();
        }
      }
    });
  });

  describe('admin over HTTP', () => {
    it('creates, decides and storms through /_admin, for a sandbox running as its own process', async () => {
      const post = async (path: string, body: unknown) => {
        const res = await fetch(`${sb.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
        return { status: res.status, body: (await res.json()) as Record<string, unknown> };
      };
      const approver = freshUser();
      const created = await post('/_admin/approvals', { count: 2, approvers: [approver.userName] });
      expect(created.status).to.equal(200);
      const [first, second] = created.body.approvals as string[];
      expect((await post(`/_admin/approvals/${first}/reject`, { comment: 'over budget' })).status).to.equal(200);
      expect((await post(`/_admin/approvals/${second}/explode`, {})).body).to.deep.include({ status: 'failure' });
      const { data } = await client.GET(APPROVALS, {
        params: { query: { sysparm_query: `approver=${approver.sysId}^ORDERBYsys_id`, sysparm_fields: 'sys_id,state' } },
      });
      expect(data!.result.find((r) => r.sys_id === first)!.state).to.equal('rejected');
      expect(data!.result.find((r) => r.sys_id === second)!.state).to.equal('requested');

      const other = freshUser();
      expect((await post(`/_admin/approvals/${second}/reassign`, { approver: other.userName })).status).to.equal(200);
      expect(sb.admin.record('sysapproval_approver', second!)!.approver).to.equal(other.sysId);
      const deleted = await fetch(`${sb.url}/_admin/records/sysapproval_approver/${second}`, { method: 'DELETE' });
      expect(await deleted.json()).to.deep.equal({ deleted: true });
      const gone = await client.GET('/api/now/table/sysapproval_approver/{sys_id}', { params: { path: { sys_id: second! } } });
      expect(gone.response.status).to.equal(404);

      expect((await post('/_admin/storm', { requests: 1, retryAfterSeconds: 4 })).status).to.equal(200);
      const limited = await client.GET(APPROVALS, { params: { query: { sysparm_limit: 1 } } });
      expect(limited.response.headers.get('retry-after')).to.equal('4');
      const state = (await (await fetch(`${sb.url}/_admin/state`)).json()) as { approvals: Record<string, number> };
      expect(state.approvals.rejected).to.be.greaterThan(0);
    });
  });

  describe('options', () => {
    it('is reproducible per seed and fails fast on a bad option', async () => {
      const options: ServiceNowSandboxOptions = { seed: 11 };
      const a = await startServiceNowSandbox(options);
      const b = await startServiceNowSandbox(options);
      try {
        expect(a.admin.users()).to.deep.equal(b.admin.users());
        expect(a.admin.approvals()).to.deep.equal(b.admin.approvals());
        expect(a.credentials).to.deep.equal(b.credentials);
      } finally {
        await a.close();
        await b.close();
      }
      let failed: unknown;
      try {
        await startServiceNowSandbox({ defaultLimit: 0 });
      } catch (err) {
        failed = err;
      }
      expect(failed).to.be.instanceOf(RangeError);
    });
  });
});
