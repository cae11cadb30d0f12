import { X509Certificate } from 'node:crypto'
import type { SecureContextOptions } from 'node:tls'
import type { Logger } from 'pino'
import { FileWatcher } from '../config/watch-files.js'
import type { IssuingCaMaterial } from '../pki/signer.js'
import {
  checkCaBundle,
  checkFactoryCa,
  checkListenerPair,
  type ListenerMaterial,
  listenerContextOptions,
  loadIssuingCa,
  parseCaBundle,
  readText,
} from './tls-material.js'

/** TlsMaterialName names a set of files reloaded together (a bounded metric label). */
export type TlsMaterialName = 'listener' | 'factory_ca' | 'production_ca' | 'issuing_ca' | 'operational_ca'

/** TlsFiles are the configured files the reloader watches. */
export interface TlsFiles {
  readonly certFile: string
  readonly keyFile: string
  readonly clientCaFile: string
  readonly productionCaFile?: string | undefined
  /** The embedded CA's files; absent when cert-manager issues. */
  readonly issuingCa?: { certFile: string; keyFile: string; chainFile?: string | undefined } | undefined
  /** The CA bundle of operational certificates the listener trusts for renewal; absent: renewal is off. */
  readonly operationalCaFile?: string | undefined
}

/** TlsReloaderDeps are where reloaded material goes. */
export interface TlsReloaderDeps {
  readonly logger: Logger
  /** Installs the listener's new secure context (new handshakes only; open connections keep theirs). */
  readonly applyListener: (options: SecureContextOptions) => void
  readonly onResult?: (material: TlsMaterialName, ok: boolean) => void
}

/**
 * TlsReloader re-reads TLS material when its files change (cert-manager renewing the listener certificate, a
 * Secret mount swapped by the kubelet) and swaps each set in whole once tls-material.ts accepts it; a set that
 * it refuses or that cannot be read is logged and the current one kept. Read `productionCaPem` and `issuingCa`
 * fresh for every registration.
 */
export class TlsReloader {
  readonly #files: TlsFiles
  readonly #deps: TlsReloaderDeps
  #watcher: FileWatcher | undefined
  #listenerCertificate: X509Certificate
  #factoryCas: readonly X509Certificate[]
  #listener: ListenerMaterial
  #productionCaPem: string
  #issuingCa: IssuingCaMaterial | undefined
  #operationalCas: readonly X509Certificate[]

  constructor(
    files: TlsFiles,
    initial: {
      listener: ListenerMaterial
      productionCaPem: string
      issuingCa?: IssuingCaMaterial | undefined
    },
    deps: TlsReloaderDeps,
  ) {
    this.#files = files
    this.#deps = deps
    this.#listener = initial.listener
    this.#listenerCertificate = new X509Certificate(initial.listener.certPem)
    this.#factoryCas = parseCaBundle(initial.listener.clientCaPem, 'tls.clientCaFile')
    this.#productionCaPem = initial.productionCaPem
    this.#issuingCa = initial.issuingCa
    this.#operationalCas = parseCaBundle(
      initial.listener.operationalCaPem ?? '',
      'lifecycle.operationalCaFile',
    )
  }

  /** operationalCas are the CAs whose certificates are operational (a connection with one renews). */
  get operationalCas(): readonly X509Certificate[] {
    return this.#operationalCas
  }

  get listenerNotAfter(): Date {
    return new Date(this.#listenerCertificate.validTo)
  }

  get listenerCertificate(): X509Certificate {
    return this.#listenerCertificate
  }

  get factoryCas(): readonly X509Certificate[] {
    return this.#factoryCas
  }

  /** productionCaPem is the current production CA bundle ('' when none is configured). */
  get productionCaPem(): string {
    return this.#productionCaPem
  }

  /** issuingCa is the embedded CA currently issuing (undefined when cert-manager issues). */
  get issuingCa(): IssuingCaMaterial | undefined {
    return this.#issuingCa
  }

  start(): void {
    const f = this.#files
    const ca = f.issuingCa
    const paths = [
      f.certFile,
      f.keyFile,
      f.clientCaFile,
      f.productionCaFile,
      ca?.certFile,
      ca?.keyFile,
      ca?.chainFile,
      f.operationalCaFile,
    ]
    this.#watcher = new FileWatcher(
      paths.filter((p): p is string => p !== undefined),
      (changed) => this.#reload(changed),
    )
  }

  #reload(changed: ReadonlySet<string>): void {
    const f = this.#files
    // the pair and the factory CAs come from different places (a cert-manager Secret, a ConfigMap): one that is
    // broken does not hold up the other
    this.#try('listener', changed, [f.certFile, f.keyFile], () => {
      const material = { ...this.#listener, certPem: readText(f.certFile), keyPem: readText(f.keyFile) }
      const certificate = checkListenerPair(material)
      this.#applyListener(material)
      this.#listenerCertificate = certificate
    })
    this.#try('factory_ca', changed, [f.clientCaFile], () => {
      const material = { ...this.#listener, clientCaPem: readText(f.clientCaFile) }
      const cas = checkFactoryCa(material)
      this.#applyListener(material)
      this.#factoryCas = cas
    })
    this.#try('production_ca', changed, [f.productionCaFile], () => {
      const pem = readText(f.productionCaFile)
      checkCaBundle(pem, 'production.caFile')
      this.#productionCaPem = pem
    })
    // the embedded CA's own certificate (the default) follows the issuing_ca reload below
    if (f.operationalCaFile !== f.issuingCa?.certFile) {
      this.#try('operational_ca', changed, [f.operationalCaFile], () => {
        const material = { ...this.#listener, operationalCaPem: readText(f.operationalCaFile) }
        const cas = parseCaBundle(material.operationalCaPem, 'lifecycle.operationalCaFile')
        checkFactoryCa(material)
        this.#applyListener(material)
        this.#operationalCas = cas
      })
    }
    const ca = f.issuingCa
    if (ca) {
      this.#try('issuing_ca', changed, [ca.certFile, ca.keyFile, ca.chainFile], () => {
        this.#issuingCa = loadIssuingCa(readText(ca.certFile), readText(ca.keyFile), readText(ca.chainFile))
        if (f.operationalCaFile === ca.certFile) this.#trustRotatedCa(this.#issuingCa.ca.certificate)
      })
    }
  }

  /**
   * #trustRotatedCa adds the new embedded CA to the operational CAs the listener trusts and keeps the one it
   * replaces, so that devices holding certificates of the old CA can still renew (until a restart, which trusts
   * the CA file only: list both in lifecycle.operationalCaFile to keep the old one longer).
   */
  #trustRotatedCa(certificate: X509Certificate): void {
    if (this.#operationalCas.some((c) => c.fingerprint256 === certificate.fingerprint256)) return
    const cas = [...this.#operationalCas, certificate]
    this.#applyListener({ ...this.#listener, operationalCaPem: cas.map((c) => c.toString()).join('') })
    this.#operationalCas = cas
  }

  #applyListener(material: ListenerMaterial): void {
    this.#deps.applyListener(listenerContextOptions(material))
    this.#listener = material
  }

  /** #try reloads `material` when one of its files changed, keeping the current one when the new one is refused. */
  #try(
    material: TlsMaterialName,
    changed: ReadonlySet<string>,
    files: (string | undefined)[],
    reload: () => void,
  ): void {
    if (!files.some((p) => p !== undefined && changed.has(p))) return
    try {
      reload()
    } catch (err) {
      const { code, message } = err as NodeJS.ErrnoException
      const reason = code ? `cannot read a file (${code})` : message
      this.#deps.logger.error({ material, reason }, 'TLS material refused; keeping the current one')
      this.#deps.onResult?.(material, false)
      return
    }
    this.#deps.logger.info({ material, files: files.filter(Boolean) }, 'TLS material reloaded')
    this.#deps.onResult?.(material, true)
  }

  close(): void {
    this.#watcher?.close()
  }
}
