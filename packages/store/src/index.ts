// @thfc/store's public API: the Node I/O that packer, blockfs and the mirror share.
export {};
