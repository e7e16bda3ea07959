//! brand-plugin in JavaScript, the component's entry: answers a tenant's welcome message and
//! brand colour over XMPP, as examples/brand-plugin does in Rust. A client sends
//! `<iq type='get' to='VHOST'><query xmlns='urn:example:brand'/></iq>` and gets
//! `<query><welcome>…</welcome><colour>#rrggbb</colour></query>` back; every other stanza
//! passes. This file only wires the WIT import to the plugin class (src/brand.js) and exports
//! `hookHandler`. World: wit/brand.wit (imports `stanzas` only). Settings: `welcome`, `colour`.

import * as stanzas from 'lilt:plugin/stanzas@0.1.0';
import { exportHooks, wasmHost } from '../lilt-sdk/lilt.js';
import { BrandPlugin } from './brand.js';

export const hookHandler = exportHooks(BrandPlugin, wasmHost({ stanzas }));
