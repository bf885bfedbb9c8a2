import { ApiError } from './api';
import { type DeployCall, type DeployState, deployState, need } from './deploy-state';

/** RAM 2015-05-01 as deploy:prepare calls it: roles, custom policies and their versions, attachments. */
export function ramAction(call: DeployCall): Record<string, unknown> {
  const s = deployState(call.emulator);
  const p = call.params;
  const now = new Date(call.emulator.now()).toISOString();
  const write = (what: string) => s.writes.push(`ram:${call.action}:${what}`);
  switch (call.action) {
    case 'GetRole': {
      const name = need(p, 'RoleName');
      const role = s.roles.get(name) ?? sandboxRole(call, s, name);
      if (!role) throw new ApiError(404, 'EntityNotExist.Role', `The role not exists: ${name}.`);
      return { Role: roleOf(call, name, role) };
    }
    case 'CreateRole': {
      const name = need(p, 'RoleName');
      if (s.roles.has(name))
        throw new ApiError(409, 'EntityAlreadyExists.Role', `The role already exists: ${name}.`);
      const role = {
        document: need(p, 'AssumeRolePolicyDocument'),
        description: p.Description ?? '',
        created: now,
      };
      s.roles.set(name, role);
      write(name);
      return { Role: roleOf(call, name, role) };
    }
    case 'UpdateRole': {
      const name = need(p, 'RoleName');
      const role = s.roles.get(name);
      if (!role) throw new ApiError(404, 'EntityNotExist.Role', `The role not exists: ${name}.`);
      if (p.NewAssumeRolePolicyDocument) role.document = p.NewAssumeRolePolicyDocument;
      write(name);
      return { Role: roleOf(call, name, role) };
    }
    default:
      return ramPolicyAction(call, s, now, write);
  }
}

/**
 * A role the sandbox made for its functions (they run as their s.yaml roles) without deploy:prepare: from then
 * on a role like any other, with no policy attached.
 */
function sandboxRole(call: DeployCall, s: DeployState, name: string) {
  const known = call.emulator.state.ramRoles?.find((r) => r.roleName === name);
  if (!known) return undefined;
  const role = { document: '', description: 'made by the sandbox', created: known.createDate };
  s.roles.set(name, role);
  return role;
}

const roleOf = (
  call: DeployCall,
  name: string,
  role: { document: string; description: string; created: string },
) => ({
  RoleName: name,
  // One id per role name across the emulator: the uid CS grants to and names in the role's kubeconfigs.
  RoleId: call.emulator.roleIdOf(name),
  Arn: `acs:ram::${call.emulator.state.accountId}:role/${name.toLowerCase()}`,
  AssumeRolePolicyDocument: role.document,
  Description: role.description,
  CreateDate: role.created,
});

function ramPolicyAction(
  call: DeployCall,
  s: DeployState,
  now: string,
  write: (what: string) => void,
): Record<string, unknown> {
  const p = call.params;
  const policy = () => {
    const found = s.policies.get(need(p, 'PolicyName'));
    if (!found) throw new ApiError(404, 'EntityNotExist.Policy', `The policy not exists: ${p.PolicyName}.`);
    return found;
  };
  const custom = () => {
    if (p.PolicyType && p.PolicyType !== 'Custom')
      throw new ApiError(404, 'EntityNotExist.Policy', `The policy not exists: ${p.PolicyName}.`);
  };
  // The system policies the sandbox knows (RAM's own, attached by name).
  const system = p.PolicyType === 'System' && /^Aliyun[A-Za-z]+Policy$/.test(p.PolicyName ?? '');
  switch (call.action) {
    case 'GetPolicy': {
      custom();
      const found = policy();
      const current = found.versions.find((v) => v.isDefault);
      return {
        Policy: { PolicyName: found.name, PolicyType: 'Custom', DefaultVersion: current?.id },
        DefaultPolicyVersion: {
          VersionId: current?.id,
          IsDefaultVersion: true,
          PolicyDocument: current?.document,
        },
      };
    }
    case 'CreatePolicy': {
      const name = need(p, 'PolicyName');
      if (s.policies.has(name))
        throw new ApiError(409, 'EntityAlreadyExists.Policy', `The policy already exists: ${name}.`);
      s.policies.set(name, {
        name,
        versions: [{ id: 'v1', document: need(p, 'PolicyDocument'), isDefault: true, created: now }],
      });
      write(name);
      return { Policy: { PolicyName: name, PolicyType: 'Custom', DefaultVersion: 'v1' } };
    }
    case 'CreatePolicyVersion': {
      const found = policy();
      if (found.versions.length >= 5) {
        if (p.RotateStrategy !== 'DeleteOldestNonDefaultVersionWhenLimitExceeded')
          throw new ApiError(
            409,
            'LimitExceeded.Policy.Version',
            'The policy versions exceed the limit of 5.',
          );
        const oldest = found.versions.findIndex((v) => !v.isDefault);
        found.versions.splice(oldest, 1);
      }
      const id = `v${Math.max(...found.versions.map((v) => Number(v.id.slice(1)))) + 1}`;
      const makeDefault = p.SetAsDefault === 'true';
      if (makeDefault) for (const v of found.versions) v.isDefault = false;
      found.versions.push({ id, document: need(p, 'PolicyDocument'), isDefault: makeDefault, created: now });
      write(found.name);
      return { PolicyVersion: { VersionId: id, IsDefaultVersion: makeDefault } };
    }
    case 'ListPoliciesForRole': {
      const role = need(p, 'RoleName');
      if (!s.roles.has(role)) throw new ApiError(404, 'EntityNotExist.Role', `The role not exists: ${role}.`);
      const names = [...(s.attached.get(role) ?? [])];
      return {
        Policies: {
          Policy: names.map((n) => ({
            PolicyName: n,
            PolicyType: n.startsWith('Aliyun') ? 'System' : 'Custom',
          })),
        },
      };
    }
    case 'AttachPolicyToRole': {
      const role = need(p, 'RoleName');
      if (!s.roles.has(role)) throw new ApiError(404, 'EntityNotExist.Role', `The role not exists: ${role}.`);
      if (!system) custom();
      const found = system ? { name: p.PolicyName ?? '' } : policy();
      const set = s.attached.get(role) ?? new Set<string>();
      if (set.has(found.name))
        throw new ApiError(
          409,
          'EntityAlreadyExists.Role.Policy',
          'The policy is already attached to the role.',
        );
      set.add(found.name);
      s.attached.set(role, set);
      write(`${found.name}->${role}`);
      return {};
    }
    default:
      throw new ApiError(404, 'InvalidAction.NotFound', `Specified api is not found: ${call.action}`);
  }
}
