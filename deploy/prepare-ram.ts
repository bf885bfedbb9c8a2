import {
  AttachPolicyToRoleRequest,
  CreateRoleRequest,
  GetRoleRequest,
  ListPoliciesForRoleRequest,
  UpdateRoleRequest,
} from '@alicloud/ram20150501';
import { absentOn, canonical, type Run } from './prepare-run';

/**
 * A RAM role with this trust policy: created when absent; an existing one's trust put back when it drifted and
 * `updateTrust` says the role is the suite's own. Returns whether the role existed before.
 */
export async function ensureRole(
  run: Run,
  name: string,
  role: { trust: string; description: string; updateTrust: boolean },
): Promise<boolean> {
  const { ram } = run.c;
  const found = await absentOn(
    () => ram.getRole(new GetRoleRequest({ roleName: name })),
    ['EntityNotExist.Role'],
  );
  if (!found) {
    await run.change('RAM role', name, 'create', () =>
      ram.createRole(
        new CreateRoleRequest({
          roleName: name,
          assumeRolePolicyDocument: role.trust,
          description: role.description,
        }),
      ),
    );
    return false;
  }
  if (role.updateTrust && canonical(found.body?.role?.assumeRolePolicyDocument) !== canonical(role.trust))
    await run.change('RAM role', name, 'update', () =>
      ram.updateRole(new UpdateRoleRequest({ roleName: name, newAssumeRolePolicyDocument: role.trust })),
    );
  else run.same('RAM role', name);
  return true;
}

/** A policy attached to a role, once (a role that did not exist holds none). */
export async function ensureAttached(
  run: Run,
  role: string,
  policy: { name: string; type: 'Custom' | 'System' },
  roleExists: boolean,
): Promise<void> {
  const { ram } = run.c;
  const attached = roleExists
    ? ((await ram.listPoliciesForRole(new ListPoliciesForRoleRequest({ roleName: role }))).body?.policies
        ?.policy ?? [])
    : [];
  const what = `${policy.name} → ${role}`;
  if (attached.some((p) => p.policyName === policy.name && p.policyType === policy.type))
    return run.same('RAM attachment', what);
  return run.change('RAM attachment', what, 'create', () =>
    ram.attachPolicyToRole(
      new AttachPolicyToRoleRequest({ policyType: policy.type, policyName: policy.name, roleName: role }),
    ),
  );
}
