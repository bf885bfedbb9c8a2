import { ApiError } from './api';
import type { CloudEmulator } from './emulator';

/**
 * RAM 2015-05-01 (RPC), as far as `grant` needs it: `GetRole`, for the role's id, the uid ACK grants to and
 * names in the kubeconfigs it issues the role.
 */
export function ramAction(
  emulator: CloudEmulator,
  action: string,
  params: Record<string, string>,
): Record<string, unknown> {
  if (action !== 'GetRole')
    throw new ApiError(
      404,
      'InvalidAction.NotFound',
      'Specified api is not found, please check your url and method.',
    );
  const name = params.RoleName ?? '';
  if (!name) throw new ApiError(400, 'MissingRoleName', 'RoleName is mandatory for this action.');
  const role = (emulator.state.ramRoles ?? []).find((r) => r.roleName === name);
  if (!role) throw new ApiError(404, 'EntityNotExist.Role', `The role does not exist: ${name}.`);
  return {
    Role: {
      RoleId: role.roleId,
      RoleName: role.roleName,
      Arn: `acs:ram::${emulator.state.accountId}:role/${role.roleName.toLowerCase()}`,
      CreateDate: role.createDate,
      MaxSessionDuration: 3600,
    },
  };
}
