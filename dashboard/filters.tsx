import { TASK_STATUSES, type TaskFilter, type TaskKind, type TaskStatus } from './documents.js';

/** The list's filters; every control applies when it changes (a text field on Enter or leaving it). */
export function Filters({
  filter,
  onChange,
  canSwitchTenant,
}: {
  filter: TaskFilter;
  onChange: (filter: TaskFilter) => void;
  canSwitchTenant: boolean;
}) {
  const set = (patch: Partial<TaskFilter>) => onChange({ ...filter, ...patch });
  return (
    <form class="filters" aria-label="Filters" onSubmit={(event) => event.preventDefault()}>
      <label>
        Kind
        <select value={filter.kind} onChange={(event) => set({ kind: event.currentTarget.value as TaskKind })}>
          <option value="TASK">Tasks</option>
          <option value="SFN_TASK">Step Functions tasks</option>
        </select>
      </label>
      <label>
        Type
        <input
          type="search"
          name="taskType"
          value={filter.taskType ?? ''}
          placeholder="Any"
          maxLength={64}
          pattern="[A-Za-z0-9_.\-]*"
          onChange={(event) => set({ taskType: event.currentTarget.value.trim() || undefined })}
        />
      </label>
      <label>
        Status
        <select
          value={filter.status ?? ''}
          onChange={(event) => set({ status: (event.currentTarget.value || undefined) as TaskStatus | undefined })}
        >
          <option value="">Any</option>
          {TASK_STATUSES.map((status) => (
            <option key={status} value={status}>
              {status}
            </option>
          ))}
        </select>
      </label>
      <label>
        Updated since
        <input
          type="datetime-local"
          step={1}
          value={filter.updatedSince ? toLocalInput(filter.updatedSince) : ''}
          onChange={(event) => {
            const value = event.currentTarget.value;
            set({ updatedSince: value ? new Date(value).toISOString() : undefined });
          }}
        />
      </label>
      {canSwitchTenant && (
        <label>
          Tenant
          <input
            type="search"
            name="tenantCode"
            value={filter.tenantCode ?? ''}
            placeholder="Your own"
            maxLength={64}
            onChange={(event) => set({ tenantCode: event.currentTarget.value.trim() || undefined })}
          />
        </label>
      )}
    </form>
  );
}

/** An ISO instant as a datetime-local value, in this browser's time zone. */
function toLocalInput(iso: string): string {
  const date = new Date(iso);
  const local = new Date(date.getTime() - date.getTimezoneOffset() * 60_000);
  return local.toISOString().slice(0, 19);
}
