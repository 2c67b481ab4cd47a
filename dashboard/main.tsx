import './style.css';
import { render } from 'preact';
import { App } from './app.js';
import { readPageConfig } from './config.js';

render(<App config={readPageConfig()} />, document.getElementById('app')!);
