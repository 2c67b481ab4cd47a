import { useState } from 'preact/hooks';

/** Asks for a bearer token; it is kept for this tab only (sessionStorage). */
export function SignIn(props: {
  notice?: string;
  onToken: (token: string) => string | undefined;
  onDevelopmentToken?: () => void;
  onBack?: () => void;
}) {
  const [value, setValue] = useState('');
  const [problem, setProblem] = useState<string>();
  return (
    <main class="sign-in">
      <form
        aria-labelledby="sign-in-title"
        onSubmit={(event) => {
          event.preventDefault();
          setProblem(props.onToken(value));
        }}
      >
        <h2 id="sign-in-title">Sign in</h2>
        {props.notice && (
          <p class="error" role="alert">
            {props.notice}
          </p>
        )}
        <label for="token-input">Bearer token</label>
        <input
          id="token-input"
          type="password"
          autocomplete="off"
          required
          value={value}
          placeholder="eyJhbGciOi…"
          aria-describedby="token-help"
          aria-invalid={problem ? 'true' : undefined}
          onInput={(event) => setValue(event.currentTarget.value)}
        />
        <p id="token-help" class="muted">
          Kept in this tab until it closes. Make one with <code>npm run token -- --tenant acme --user alice</code>, or open a viewer link.
        </p>
        {problem && (
          <p class="error" role="alert">
            {problem}
          </p>
        )}
        <div class="buttons">
          <button type="submit" class="primary">
            Use token
          </button>
          {props.onDevelopmentToken && (
            <button type="button" onClick={props.onDevelopmentToken}>
              Use the development token
            </button>
          )}
          {props.onBack && (
            <button type="button" onClick={props.onBack}>
              Back
            </button>
          )}
        </div>
      </form>
    </main>
  );
}
