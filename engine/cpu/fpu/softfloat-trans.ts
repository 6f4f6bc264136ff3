/**
 * x87 transcendental functions (F2XM1, FYL2X, FYL2XP1, FPTAN, FPATAN,
 * FSIN/FCOS/FSINCOS) on the soft-float core. PLACEHOLDER: not implemented yet.
 */
import { Exc, F80, setIndefinite, sf } from './softfloat';

function notYet(out: F80): void {
  sf.exc |= Exc.IE;
  setIndefinite(out);
}
export function f2xm1(a: F80, out: F80): void {
  void a;
  notYet(out);
}
export function fyl2x(x: F80, y: F80, out: F80): void {
  void x;
  void y;
  notYet(out);
}
export function fyl2xp1(x: F80, y: F80, out: F80): void {
  void x;
  void y;
  notYet(out);
}
export function fpatan(y: F80, x: F80, out: F80): void {
  void x;
  void y;
  notYet(out);
}
export function fptan(a: F80, out: F80, one: F80): void {
  void a;
  notYet(out);
  notYet(one);
}
export function fsincos(a: F80, sin: F80, cos: F80): void {
  void a;
  notYet(sin);
  notYet(cos);
}
