import { parserSuite } from '../../test/helpers/parser-suite.js';
import { fallBackSuite } from '../../test/helpers/fall-back.js';
import plugin from './index.js';

parserSuite('globalprotect');

// PAN-OS writes its log times in the device's zone without an offset
fallBackSuite('globalprotect: the generated time in the fall-back hour', plugin, '<14>1,2026/11/01 01:10:00,012801000001,GLOBALPROTECT,0,2817,2026/11/01 01:10:00,vsys1,gateway-connected,tunnel,,SSL,corp\\bob,DE,BOB-PC,198.51.100.77,,10.31.0.8,,6f1e2d3c-aaaa-bbbb-cccc-0123456789ab,SN123456,6.2.1,Microsoft Windows,"Microsoft Windows 11 Pro , 64-bit",1,,,"",success,,0,on-demand,0,GP-GW-EXT,7000000000000001,0x8000000000000000');
