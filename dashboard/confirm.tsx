import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';

/**
 * A modal question with the browser's own <dialog>: focus moves into it and
 * stays there, Escape cancels, and focus returns to the opener on close.
 */
export function ConfirmDialog(props: {
  title: string;
  confirmLabel: string;
  /** The safe choice, focused first. @default 'Back' */
  dismissLabel?: string;
  children: ComponentChildren;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const element = dialog.current;
    if (element && !element.open) element.showModal();
    return () => element?.close();
  }, []);
  return (
    <dialog
      ref={dialog}
      class="confirm"
      aria-labelledby="confirm-title"
      onCancel={(event) => {
        event.preventDefault();
        props.onCancel();
      }}
    >
      <form
        method="dialog"
        onSubmit={(event) => {
          event.preventDefault();
          props.onConfirm();
        }}
      >
        <h2 id="confirm-title">{props.title}</h2>
        <div class="confirm-body">{props.children}</div>
        <div class="confirm-buttons">
          <button type="button" onClick={props.onCancel} autofocus>
            {props.dismissLabel ?? 'Back'}
          </button>
          <button type="submit" class="danger">
            {props.confirmLabel}
          </button>
        </div>
      </form>
    </dialog>
  );
}
