use coca_core::device::parse_device;
use coca_core::pretrained::{Pretrained, tokens_to_tensor};
use coca_core::tokenizer::ClipTokenizer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dev = parse_device("cpu")?;
    let args: Vec<String> = std::env::args().collect();
    let p = Pretrained::load(&args[1], &dev)?;
    let tok = ClipTokenizer::from_file(std::path::Path::new(&args[2]))?;
    let imgs: Vec<String> = args[4..].to_vec();
    let n = imgs.len();
    let pixels = p.load_images(&imgs, &dev)?;
    let ids = tok.encode(&args[3], 32)?;
    let len = ids.iter().position(|&t| t == 0).unwrap_or(32);
    let tokens = tokens_to_tensor(&vec![ids; n], &dev);
    let image = p.model.encode_image(pixels);
    let text = p.model.encode_text(tokens);
    let h = p
        .model
        .text_decoder
        .hidden(image.embs.clone(), text.token_embs.clone());
    let w = h.dims()[2];
    for pos in 0..len {
        let x = h.clone().slice([0..n, pos..pos + 1, 0..w]).reshape([n, w]);
        let mean = x.clone().mean_dim(0);
        let between = (x.clone() - mean.clone())
            .powf_scalar(2.0)
            .mean()
            .sqrt()
            .into_scalar::<f32>();
        let norm = mean.powf_scalar(2.0).mean().sqrt().into_scalar::<f32>();
        let t = text
            .token_embs
            .clone()
            .slice([0..1, pos..pos + 1, 0..w])
            .powf_scalar(2.0)
            .mean()
            .sqrt()
            .into_scalar::<f32>();
        println!(
            "pos {pos}: across-image rms {between:.4}  mean-state rms {norm:.4}  text-in rms {t:.4}"
        );
    }
    let logits = p.model.text_decoder.logits(h);
    let v = logits.dims()[2];
    let last = logits.slice([0..n, len - 2..len - 1, 0..v]).reshape([n, v]);
    let am: Vec<i64> = last
        .argmax(1)
        .into_data()
        .convert::<i64>()
        .try_to_vec()
        .unwrap();
    for (i, a) in am.iter().enumerate() {
        println!("{} -> next {:?}", imgs[i], tok.decode(&[*a as u32]));
    }
    Ok(())
}
