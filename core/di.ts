/**
 * The one place inversify is imported. Everything else, plugins included, takes these names from
 * core, so a future inversify major touches this file only.
 */
export { Container, ContainerModule, inject, injectable, multiInject, optional, type ContainerModuleLoadOptions, type ServiceIdentifier } from 'inversify';
