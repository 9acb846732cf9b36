import type { SandboxInstance } from './sandbox-instance.js';
import { glideDateTime } from './sandbox-clock.js';
import type { TaskTable } from './sandbox-schema.js';

const FIRST = [
  'Abel',
  'Beth',
  'Carla',
  'David',
  'Elena',
  'Farid',
  'Grace',
  'Hiro',
  'Ines',
  'Jonas',
  'Kemal',
  'Lena',
  'Marta',
  'Nikhil',
  'Olga',
  'Pavel',
  'Quinn',
  'Rosa',
  'Sven',
  'Tariq',
];
const LAST = [
  'Tuter',
  'Anderson',
  'Okafor',
  'Loor',
  'Novak',
  'Haddad',
  'Kowalski',
  'Tanaka',
  'Moreau',
  'Berg',
  'Yilmaz',
  'Fischer',
  'Silva',
  'Rao',
  'Ivanova',
  'Horak',
  'Byrne',
  'Lopez',
  'Lund',
  'Aziz',
];
const ITEMS = [
  'Standard laptop',
  'Docking station',
  'Developer workstation',
  'Adobe Acrobat licence',
  'Mobile phone',
  'Ergonomic chair',
  '27" monitor',
  'VPN access',
];
const CHANGES = [
  'Upgrade mail server',
  'Patch database cluster',
  'Rotate TLS certificates',
  'Move file share to new storage',
  'Firewall rule for partner VPN',
  'Deploy HR portal release',
];

export interface SeedSpec {
  readonly users: number;
  readonly approvers: number;
  readonly requestedItems: number;
  readonly changeRequests: number;
  readonly integrationUser: string;
}

/**
 * Fills the instance: an integration user, `users` people (the first `approvers` of them approve),
 * requested items and change requests, each with one or two approval records. About one task in five
 * is already decided, and about one record in ten shares the previous one's second.
 */
export function seedInstance(instance: SandboxInstance, spec: SeedSpec): void {
  const rng = instance.rng;
  const start = instance.clock.nowMs();
  let at = start - 5 * 86_400_000;
  const step = (): string => {
    if (rng.next() >= 0.1) at += rng.int(1, 3_600) * 1000;
    return glideDateTime(Math.min(at, start - 1000));
  };

  instance.insert(
    'sys_user',
    {
      user_name: spec.integrationUser,
      first_name: 'Approvals',
      last_name: 'Integration',
      name: 'Approvals Integration',
      email: `${spec.integrationUser}@example.test`,
      active: 'true',
    },
    step(),
    'admin',
  );
  const people: string[] = [];
  for (let i = 0; i < spec.users; i++) {
    const first = FIRST[i % FIRST.length]!;
    const last = LAST[(i * 7 + Math.floor(i / FIRST.length)) % LAST.length]!;
    const suffix = i >= FIRST.length ? String(Math.floor(i / FIRST.length) + 1) : '';
    const userName = `${first}.${last}${suffix}`.toLowerCase();
    const row = instance.insert(
      'sys_user',
      {
        user_name: userName,
        first_name: first,
        last_name: last,
        name: `${first} ${last}`,
        email: `${userName}@example.test`,
        active: 'true',
      },
      step(),
      'admin',
    );
    people.push(row.sys_id!);
  }
  const approvers = people.slice(0, Math.max(1, Math.min(spec.approvers, people.length)));
  const requesters = people.length > approvers.length ? people.slice(approvers.length) : people;

  const task = (table: TaskTable): void => {
    const created = step();
    const requester = rng.pick(requesters);
    const fields: Record<string, string> =
      table === 'sc_req_item'
        ? {
            number: instance.nextNumber(table),
            short_description: rng.pick(ITEMS),
            requested_for: requester,
            opened_by: rng.next() < 0.8 ? requester : rng.pick(requesters),
            price: (rng.int(1_000, 250_000) / 100).toFixed(2),
            quantity: String(rng.int(1, 3)),
            approval: 'requested',
            active: 'true',
          }
        : {
            number: instance.nextNumber(table),
            short_description: rng.pick(CHANGES),
            risk: String(rng.int(2, 4)),
            start_date: glideDateTime(start + rng.int(1, 14) * 86_400_000),
            end_date: glideDateTime(start + rng.int(15, 20) * 86_400_000),
            requested_by: requester,
            approval: 'requested',
            active: 'true',
          };
    const parent = instance.insert(table, fields, created, 'system');
    const decided = rng.next() < 0.2 ? rng.pick(['approved', 'rejected']) : undefined;
    const count = rng.next() < 0.3 ? 2 : 1;
    const chosen = new Set<string>();
    while (chosen.size < Math.min(count, approvers.length)) chosen.add(rng.pick(approvers));
    for (const approver of chosen) {
      instance.insert(
        'sysapproval_approver',
        {
          approver,
          state: decided ?? 'requested',
          sysapproval: parent.sys_id!,
          document_id: parent.sys_id!,
          source_table: table,
          due_date: glideDateTime(start + rng.int(2, 10) * 86_400_000),
        },
        step(),
        'system',
      );
    }
    if (decided) parent.approval = decided;
  };
  for (let i = 0; i < spec.requestedItems; i++) task('sc_req_item');
  for (let i = 0; i < spec.changeRequests; i++) task('change_request');
}
