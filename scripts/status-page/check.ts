/**
 * The status page in a real browser:
 *
 *   npm run test:status-page [-- --shot test-results/status-page.png]
 *
 * Starts a fresh local 3-node cluster (`wrangler dev --config
 * wrangler.jepsen.toml`, 127.0.0.1 only), opens GET / in Debian's Chromium
 * (headless, driven by puppeteer-core; CHROMIUM_PATH overrides
 * /usr/bin/chromium), and checks that every member is listed, reachable, and
 * that the leader is named; creates a group and checks that the page lists it
 * with a link to the group's own page, which lists the group's members and
 * leader; then crashes a follower for 20 s and checks that the default
 * group's page shows it as unreachable while the others stay up. A screenshot of
 * that moment is written to the --shot path. Exits 1 on a failed check, 2 on a
 * harness error; everything it started is stopped, and it gives up after 120 s.
 * Plain Node 22 with --experimental-strip-types: no TS-only syntax.
 */
import puppeteer from 'puppeteer-core';
import { Cluster } from '../jepsen/cluster.ts';
import { freePorts, fs, os, path, proc, sleep } from '../jepsen/node-api.ts';

const CHROMIUM = proc.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

function shotPath(argv: readonly string[]): string {
  const i = argv.indexOf('--shot');
  return path.resolve(i >= 0 && argv[i + 1] ? (argv[i + 1] as string) : 'test-results/status-page.png');
}

/** The little of the DOM the checks read (the project compiles without the DOM types). */
interface DomNode {
  readonly dataset?: Record<string, string | undefined>;
  readonly textContent: string | null;
  readonly children: ArrayLike<DomNode>;
  querySelector(selector: string): DomNode | null;
}

/** The page's members table: name, reachable, role of each row. */
interface Row {
  name: string;
  reachable: string;
  role: string;
}

async function main(): Promise<number> {
  if (!fs.existsSync(CHROMIUM)) {
    console.error(`status-page: no Chromium at ${CHROMIUM}; install it with: apt-get install -y chromium`);
    return 2;
  }
  const shot = shotPath(proc.argv.slice(2));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'durable-raft-status-page-'));
  const [port, inspectorPort] = await freePorts(2);
  const nodes = ['node-0', 'node-1', 'node-2'];
  const cluster = new Cluster(nodes, port, inspectorPort, dir);
  let browser: Awaited<ReturnType<typeof puppeteer.launch>> | undefined;
  const hard = setTimeout(() => {
    console.error('status-page: gave up after 120 s');
    cluster.kill();
    proc.exit(2);
  }, 120_000);
  const checks: [string, boolean, string][] = [];
  try {
    await cluster.start();
    let leader: string | undefined;
    for (let i = 0; i < 100 && !leader; i++) {
      const r = await fetch(`${cluster.base}/readyz`).catch(() => undefined);
      if (r?.ok) leader = ((await r.json()) as { leader: string }).leader;
      else await sleep(200);
    }
    if (!leader) throw new Error('the cluster never got a leader');
    await fetch(`${cluster.base}/v1/kv/status-page`, { method: 'PUT', body: 'x' });

    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    });
    const page = await browser.newPage();
    await page.setViewport({ width: 1200, height: 700 });
    await page.goto(`${cluster.base}/`, { waitUntil: 'domcontentloaded' });
    const rows = (): Promise<Row[]> =>
      page.$$eval('#members tr', (trs) =>
        (trs as unknown as DomNode[]).map((tr) => ({
          name: tr.dataset?.member ?? '',
          reachable: tr.querySelector('[data-field="reachable"]')?.textContent ?? '',
          role: tr.children[2]?.textContent ?? '',
        })),
      );
    const until = async (what: string, ok: (r: Row[], lead: string) => boolean, ms: number): Promise<Row[]> => {
      const end = Date.now() + ms;
      let seen: Row[] = [];
      for (;;) {
        seen = await rows();
        const lead = await page.$eval('#leader', (e) => (e as unknown as DomNode).textContent ?? '');
        if (ok(seen, lead) || Date.now() > end) {
          checks.push([
            what,
            ok(seen, lead),
            `leader ${lead}; ${seen.map((r) => `${r.name} ${r.role} ${r.reachable}`).join(', ')}`,
          ]);
          return seen;
        }
        await sleep(250);
      }
    };
    await until(
      'every member listed and up, the leader named',
      (r, lead) => r.length === 3 && r.every((x) => x.reachable === 'up') && nodes.includes(lead),
      15_000,
    );

    // A group: listed on the default group's page, with its own page.
    const created = await fetch(`${cluster.base}/v1/groups/status-page`, { method: 'PUT', body: '{"size":3}' });
    checks.push(['a group created', created.status === 201, `PUT /v1/groups/status-page: ${created.status}`]);
    await page.goto(`${cluster.base}/`, { waitUntil: 'domcontentloaded' });
    let link = '';
    for (let i = 0; i < 40 && !link; i++) {
      link = await page
        .$eval('#groups tr[data-group="status-page"] a', (a) => (a as unknown as { href: string }).href)
        .catch(() => '');
      if (!link) await sleep(250);
    }
    checks.push(['the group listed, linked to its page', link.endsWith('/groups/status-page/'), link || 'not listed']);
    if (link) await page.goto(link, { waitUntil: 'domcontentloaded' });
    await until(
      "the group's page: its own members listed and up, its leader named",
      (r, lead) => r.length === 3 && r.every((x) => x.reachable === 'up') && nodes.includes(lead),
      15_000,
    );
    const title = await page.$eval('#group', (e) => (e as unknown as DomNode).textContent ?? '');
    checks.push(["the group's page names it", title.includes('status-page'), title]);
    await page.goto(`${cluster.base}/`, { waitUntil: 'domcontentloaded' });

    const victim = nodes.find((n) => n !== leader) as string;
    await cluster.crash(victim, 20_000);
    await until(
      `a crashed member (${victim}) shown unreachable, the others up`,
      (r) =>
        r.find((x) => x.name === victim)?.reachable === 'unreachable' &&
        r.filter((x) => x.name !== victim).every((x) => x.reachable === 'up'),
      15_000,
    );
    fs.mkdirSync(path.dirname(shot), { recursive: true });
    await page.screenshot({ path: shot as `${string}.png`, fullPage: true });
    checks.push(['screenshot written', fs.existsSync(shot), shot]);
  } catch (e) {
    console.error(`status-page: harness error: ${(e as Error).stack ?? e}\n  wrangler log: ${cluster.log}`);
    return 2;
  } finally {
    clearTimeout(hard);
    await browser?.close().catch(() => {});
    cluster.kill();
  }
  for (const [what, ok, detail] of checks) console.log(`${ok ? 'PASS' : 'FAIL'}  ${what}  (${detail})`);
  const failed = checks.some(([, ok]) => !ok);
  if (!failed) fs.rmSync(dir, { recursive: true, force: true });
  return failed ? 1 : 0;
}

main().then(
  (code) => {
    proc.exitCode = code;
    setTimeout(() => proc.exit(code), 200);
  },
  (e) => {
    console.error(`status-page: harness error: ${(e as Error).stack ?? e}`);
    proc.exit(2);
  },
);
