/** The part of picomatch 4's API onsight uses (its own types are a separate package we do not ship). */
declare module 'picomatch' {
  interface PicomatchOptions {
    dot?: boolean;
    nocase?: boolean;
    expandRange?: (a: string, b: string) => string;
  }
  interface ScanResult {
    base: string;
    glob: string;
    isGlob: boolean;
  }
  interface Picomatch {
    (glob: string, options?: PicomatchOptions): (path: string) => boolean;
    makeRe(glob: string, options?: PicomatchOptions): RegExp;
    scan(glob: string): ScanResult;
  }
  const picomatch: Picomatch;
  export default picomatch;
}
