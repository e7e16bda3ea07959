//! brand-plugin in JavaScript, the component's entry: a tenant's welcome message, display-name
//! rules and brand colour, as examples/brand-plugin does in Rust. A client sends
//! `<iq type='get' to='VHOST'><query xmlns='urn:example:brand'/></iq>` and gets
//! `<query><welcome>…</welcome><colour>#rrggbb</colour></query>` back; every other stanza
//! passes; joins have their display name checked and joiners are greeted (src/policy.js). This
//! file only wires the WIT import to the plugin class (src/brand.js) and exports
//! `hookHandler`. World: wit/brand.wit (imports `stanzas` only). Settings: `welcome`, `colour`,
//! `max_name_length`, `forbidden_words`.

import * as stanzas from 'lilt:plugin/stanzas@0.1.0';
import { exportHooks, wasmHost } from '../lilt-sdk/lilt.js';
import { BrandPlugin } from './brand.js';

export const hookHandler = exportHooks(BrandPlugin, wasmHost({ stanzas }));
