export const handler = async (): Promise<unknown> => ({ stub: 'thumbnail' });
